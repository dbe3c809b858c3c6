import type { GenerationApp } from "../generations/AppCatalog.js"
import { defineGenerationJob } from "../generations/Generations.js"

/**
 * Looping Flow's generation jobs: one loop per job. The budget covers an 8-hour target whose audio is mixed
 * (the video is always stream-copied; see workers/loopingFlow/renderLoop.ts).
 */
export const LoopingFlowJob = defineGenerationJob({ queue: "looping-flow", timeout: "120 minutes", concurrency: 1 })

export const loopingFlowApp: GenerationApp = {
  appId: "looping-flow",
  name: "Looping Flow",
  description: "Seamless video loops up to 8 hours, with audio layers",
  icon: "film",
  color: "purple",
  order: 2,
  beta: false,
  comingSoon: false,
  job: LoopingFlowJob
}
