import type { GenerationApp } from "../generations/AppCatalog.js"
import { defineGenerationJob } from "../generations/Generations.js"

/** One job per avatar generation: one provider call, then the image and its thumbnail stored. */
export const AvatarGenerationJob = defineGenerationJob({ queue: "avatar-generation", timeout: "5 minutes", concurrency: 2 })

export const avatarCreatorApp: GenerationApp = {
  appId: "avatar-creator",
  name: "Avatar Creator",
  description: "Create AI avatars with personas from a prompt, a preset or your own photo",
  icon: "user-circle",
  color: "purple",
  order: 3,
  beta: false,
  comingSoon: false,
  job: AvatarGenerationJob
}

/** Credits per operation; editing an avatar is free. */
export const AVATAR_COSTS = { upload: 2, generate: 10, preset: 8, reference: 12 } as const

/** Each side of an uploaded avatar, in pixels. */
export const AVATAR_MIN_SIDE = 256
export const AVATAR_MAX_SIDE = 4096
