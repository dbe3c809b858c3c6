import type { GenerationApp } from "../generations/AppCatalog.js"
import { defineGenerationJob } from "../generations/Generations.js"

/** Video Mixer's generation jobs: one job renders every output of a generation, one after another. */
export const VideoMixerJob = defineGenerationJob({ queue: "video-mixer", timeout: "60 minutes", concurrency: 1 })

export const videoMixerApp: GenerationApp = {
  appId: "video-mixer",
  name: "Video Mixer",
  description: "Mix your clips into many unique videos",
  icon: "video",
  color: "blue",
  order: 1,
  beta: false,
  comingSoon: false,
  job: VideoMixerJob
}
