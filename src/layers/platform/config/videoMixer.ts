import { section } from "./section.js"
import { integer } from "./variable.js"

export const videoMixerSection = section("Video Mixer", {
  maxOutputs: integer({
    name: "VIDEO_MIXER_MAX_OUTPUTS",
    min: 1,
    max: 10_000,
    default: 100,
    description: "most videos one Video Mixer generation may ask for (totalVideos); more is 400"
  })
}, (v) => v)
