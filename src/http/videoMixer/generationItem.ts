import { Schema } from "effect"
import type { MixGeneration } from "../../services/videoMixer/VideoMixer.js"
import { MixJobSettings } from "../../services/videoMixer/MixSettings.js"
import type { Generated } from "./VideoMixerApi.js"

const PREFIX = "/api/apps/video-mixer"
const decodeSettings = Schema.decodeUnknownSync(MixJobSettings)

/** The web app's generation shape: the flat settings, optional ones as null, outputPaths as a JSON string. */
export const generationItem = (g: MixGeneration) =>
  // Written by generate from MixSettings; a row that no longer decodes is a fault (500), not bad input.
  itemOf(g, decodeSettings(g.settings))

const itemOf = (g: MixGeneration, s: MixJobSettings) => {
  return {
    id: g.id,
    projectId: g.projectId,
    status: g.status,
    progress: g.progress,
    totalVideos: g.unitsRequested,
    videosDelivered: g.unitsDelivered,
    creditUsed: g.charged - g.refunded,
    createdAt: g.createdAt.toISOString(),
    completedAt: g.completedAt === null ? null : g.completedAt.toISOString(),
    outputPaths: g.outputs.length === 0
      ? null
      : JSON.stringify(g.outputs.map((_, i) => `${PREFIX}/download/${g.id}/${i}`)),
    errorMessage: g.errorMessage,
    enableOrderMixing: s.enableOrderMixing,
    enableDifferentStart: s.enableDifferentStart,
    fixedStartVideoId: s.fixedStartVideoId ?? null,
    enableGroupMixing: s.enableGroupMixing,
    groupMixingMode: s.groupMixingMode,
    enableSpeedVariations: s.enableSpeedVariations,
    speedMin: s.speedMin,
    speedMax: s.speedMax,
    metadataSource: s.metadataSource,
    videoBitrate: s.videoBitrate,
    videoResolution: s.videoResolution,
    frameRate: s.frameRate,
    aspectRatio: s.aspectRatio,
    durationType: s.durationType,
    fixedDuration: s.fixedDuration ?? null,
    smartDistribution: s.smartDistribution,
    distributionMode: s.distributionMode,
    audioOption: s.audioOption
  }
}

/**
 * The body of an accepted generate (201), on the HttpApi route and on the lean one (generateRoute.ts),
 * from the settings generate has just stored (typed, so not decoded again). Its type is the
 * schema's encoded form, which the lean route writes as it is (see there).
 */
export const generatedBody = (accepted: {
  readonly generation: MixGeneration
  readonly settings: MixJobSettings
  readonly creditUsed: number
  readonly creditBalance: number
}): typeof Generated.Encoded => ({
  success: true as const,
  generation: itemOf(accepted.generation, accepted.settings),
  creditUsed: accepted.creditUsed,
  creditBalance: accepted.creditBalance,
  message: `Generating ${accepted.generation.unitsRequested} ${accepted.generation.unitsRequested === 1 ? "video" : "videos"}`
})
