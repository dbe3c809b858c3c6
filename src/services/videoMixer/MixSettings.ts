import { Schema } from "effect"

/**
 * Video Mixer's generation settings, in the web app's flat shape (frontend-contract 2.5), with the
 * ranges the old backend never checked. The one schema the generate and estimate routes decode, the
 * generation row stores, and the renderer reads.
 */

export const Resolution = Schema.Literal("480p", "720p", "1080p", "4k")
export type Resolution = typeof Resolution.Type
export const AspectRatio = Schema.Literal("9:16", "16:9", "1:1", "4:5")
export type AspectRatio = typeof AspectRatio.Type
export const MetadataSource = Schema.Literal("capcut", "tiktok", "instagram", "youtube")
export type MetadataSource = typeof MetadataSource.Type
export const VideoBitrate = Schema.Literal("low", "medium", "high")
export type VideoBitrate = typeof VideoBitrate.Type
export const FrameRate = Schema.Literal(24, 30, 60)
export type FrameRate = typeof FrameRate.Type
export const DistributionMode = Schema.Literal("proportional", "equal", "weighted")
export type DistributionMode = typeof DistributionMode.Type

/** Playback speed bounds (atempo and setpts stay exact inside them). */
export const SPEED_MIN = 0.5
export const SPEED_MAX = 2
/** Bounds of a fixed output duration, in seconds. */
export const FIXED_DURATION_MIN = 1
export const FIXED_DURATION_MAX = 600

const Speed = Schema.Number.pipe(Schema.between(SPEED_MIN, SPEED_MAX, {
  message: () => `speed must be between ${SPEED_MIN} and ${SPEED_MAX}`
}))

const MixSettingsFields = Schema.Struct({
  enableOrderMixing: Schema.Boolean,
  enableDifferentStart: Schema.Boolean,
  /** A video of the project that opens the first output. */
  fixedStartVideoId: Schema.optional(Schema.String),
  enableGroupMixing: Schema.Boolean,
  groupMixingMode: Schema.Literal("sequential", "random"),
  enableSpeedVariations: Schema.Boolean,
  speedMin: Speed,
  speedMax: Speed,
  metadataSource: MetadataSource,
  videoBitrate: VideoBitrate,
  videoResolution: Resolution,
  frameRate: FrameRate,
  aspectRatio: AspectRatio,
  durationType: Schema.Literal("original", "fixed"),
  fixedDuration: Schema.optional(Schema.Number.pipe(Schema.between(FIXED_DURATION_MIN, FIXED_DURATION_MAX, {
    message: () => `fixedDuration must be between ${FIXED_DURATION_MIN} and ${FIXED_DURATION_MAX} seconds`
  }))),
  smartDistribution: Schema.Boolean,
  distributionMode: DistributionMode,
  audioOption: Schema.Literal("keep", "mute")
})

export const MixSettings = MixSettingsFields.pipe(
  Schema.filter((s) => s.speedMin <= s.speedMax || { path: ["speedMin"], message: "speedMin must not exceed speedMax" }),
  Schema.filter((s) =>
    s.durationType !== "fixed" || s.fixedDuration !== undefined ||
    { path: ["fixedDuration"], message: "fixedDuration is required when durationType is fixed" }
  )
).annotations({ identifier: "VideoMixerSettings" })
export type MixSettings = typeof MixSettings.Type

/** Credits per output, exactly the old plugin table (lumiku.md 3.2): what the user is quoted and charged. */
export const creditCostPerOutput = (s: MixSettings): number => {
  let cost = 1
  if (s.enableOrderMixing) cost += 1
  if (s.enableGroupMixing && s.groupMixingMode === "random") cost += 2
  if (s.enableSpeedVariations) cost += 1
  cost += { "480p": 0, "720p": 2, "1080p": 5, "4k": 10 }[s.videoResolution]
  if (s.videoBitrate === "high") cost += 2
  if (s.frameRate === 60) cost += 3
  if (s.smartDistribution) cost += 1
  return cost
}

/** The canvas an output is rendered on: the resolution's short side, shaped by the aspect ratio (even sizes, for yuv420p). */
export const canvasOf = (resolution: Resolution, aspect: AspectRatio): { readonly width: number; readonly height: number } => {
  const short = { "480p": 480, "720p": 720, "1080p": 1080, "4k": 2160 }[resolution]
  const [w, h] = aspect.split(":").map(Number) as [number, number]
  const even = (n: number) => Math.round(n / 2) * 2
  return w >= h ? { width: even((short * w) / h), height: short } : { width: short, height: even((short * h) / w) }
}

export const BITRATE_KBPS: Readonly<Record<VideoBitrate, number>> = { low: 1000, medium: 2500, high: 5000 }

export const METADATA: Readonly<Record<MetadataSource, { readonly encoder: string; readonly comment: string }>> = {
  capcut: { encoder: "CapCut", comment: "Made with CapCut" },
  tiktok: { encoder: "TikTok", comment: "TikTok Video" },
  instagram: { encoder: "Instagram", comment: "Instagram Reels" },
  youtube: { encoder: "YouTube", comment: "YouTube Video" }
}

/**
 * One source clip as the generation saw it when it was accepted: a snapshot, so a later edit of the
 * project (a video moved, deleted) cannot change what a generation renders or reproduces.
 */
export const MixClip = Schema.Struct({
  videoId: Schema.String,
  /** Its group, when grouped. */
  groupId: Schema.NullOr(Schema.String),
  /** The video's order in the project (ties broken by creation). */
  order: Schema.Number,
  /** The Storage key of the uploaded file. */
  storageKey: Schema.String,
  durationSeconds: Schema.Number,
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number)
})
export type MixClip = typeof MixClip.Type

/** A group as the generation saw it: its videos are the clips with its id. */
export const MixGroup = Schema.Struct({ groupId: Schema.String, order: Schema.Number })
export type MixGroup = typeof MixGroup.Type

/**
 * What a Video Mixer generation row's `settings` holds: the settings (flat, as the web app reads them)
 * plus the snapshot of the project's clips and groups, in project order.
 */
export const MixJobSettings = Schema.Struct({
  ...MixSettingsFields.fields,
  clips: Schema.Array(MixClip),
  groups: Schema.Array(MixGroup)
})
export type MixJobSettings = typeof MixJobSettings.Type
