import { section } from "./section.js"
import { boolean, duration, optionalText } from "./variable.js"

export const ffmpegSection = section("FFmpeg", {
  ffmpegPath: optionalText({
    name: "FFMPEG_PATH",
    accepts: "path",
    whenUnset: "ffmpeg on PATH, else the npm-bundled build (warns)",
    description: "the ffmpeg binary; a configured binary that is wrong stops startup"
  }),
  ffprobePath: optionalText({
    name: "FFPROBE_PATH",
    accepts: "path",
    whenUnset: "ffprobe on PATH, else the npm-bundled build (warns)",
    description: "the ffprobe binary"
  }),
  bundled: boolean({ name: "FFMPEG_BUNDLED", default: true, description: "false: never fall back to the npm-bundled builds" }),
  timeout: duration({ name: "FFMPEG_TIMEOUT", default: "10 minutes", description: "an ffmpeg run is killed past this" })
}, (v) => v)
