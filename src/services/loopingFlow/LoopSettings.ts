import { Schema } from "effect"
import { MAX_TARGET_SECONDS, MIN_TARGET_SECONDS } from "./loopCost.js"

export const LoopStyleSchema = Schema.Literal("simple", "crossfade", "boomerang").annotations({
  message: () => "loopStyle must be one of simple, crossfade, boomerang"
})

const ranged = (name: string, min: number, max: number) =>
  Schema.Number.pipe(
    Schema.finite({ message: () => `${name} must be a number from ${min} to ${max}` }),
    Schema.between(min, max, { message: () => `${name} must be a number from ${min} to ${max}` })
  )
const Bool = (name: string) => Schema.Boolean.annotations({ message: () => `${name} must be true or false` })
const Id = (name: string) => Schema.UUID.annotations({ message: () => `${name} must be a UUID` })

export const TargetDuration = ranged("targetDuration (seconds)", MIN_TARGET_SECONDS, MAX_TARGET_SECONDS)

/** The web app's POST /generate body (frontend-contract 2.6); `targetDuration` is in seconds. */
export const GenerateRequest = Schema.Struct({
  projectId: Id("projectId"),
  videoId: Id("videoId"),
  targetDuration: TargetDuration,
  loopStyle: Schema.optionalWith(LoopStyleSchema, { default: () => "crossfade" as const }),
  crossfadeDuration: Schema.optionalWith(ranged("crossfadeDuration", 0.5, 2), { default: () => 1 }),
  videoCrossfade: Schema.optionalWith(Bool("videoCrossfade"), { default: () => true }),
  audioCrossfade: Schema.optionalWith(Bool("audioCrossfade"), { default: () => true }),
  masterVolume: Schema.optionalWith(ranged("masterVolume", 0, 100), { default: () => 100 }),
  audioFadeIn: Schema.optionalWith(ranged("audioFadeIn", 0, 10), { default: () => 0 }),
  audioFadeOut: Schema.optionalWith(ranged("audioFadeOut", 0, 10), { default: () => 0 }),
  muteOriginal: Schema.optionalWith(Bool("muteOriginal"), { default: () => false })
})
export type GenerateRequest = typeof GenerateRequest.Type

/** A layer's mix settings (the PATCH body, and the multipart fields of its upload). */
export const LayerVolume = ranged("volume", 0, 100)
export const LayerFade = (name: string) => ranged(name, 0, 10)

export const LayerPatch = Schema.Struct({
  volume: Schema.optional(LayerVolume),
  muted: Schema.optional(Bool("muted")),
  fadeIn: Schema.optional(LayerFade("fadeIn")),
  fadeOut: Schema.optional(LayerFade("fadeOut"))
})
export type LayerPatch = typeof LayerPatch.Type

/** One audio layer as a generation snapshots it: its stored file and its mix. */
export const LayerSnapshot = Schema.Struct({
  layerIndex: Schema.Int.pipe(Schema.between(0, 3)),
  storageKey: Schema.String,
  volume: LayerVolume,
  muted: Schema.Boolean,
  fadeIn: LayerFade("fadeIn"),
  fadeOut: LayerFade("fadeOut")
})

/**
 * What a looping generation's row holds in `settings`: everything the render needs, copied at generate
 * time, so later edits of the project (a layer changed, a video deleted) never change a running job.
 */
export const LoopSnapshot = Schema.Struct({
  videoId: Schema.String,
  sourceKey: Schema.String,
  targetDuration: TargetDuration,
  loopStyle: LoopStyleSchema,
  crossfadeDuration: ranged("crossfadeDuration", 0.5, 2),
  videoCrossfade: Schema.Boolean,
  audioCrossfade: Schema.Boolean,
  masterVolume: ranged("masterVolume", 0, 100),
  audioFadeIn: ranged("audioFadeIn", 0, 10),
  audioFadeOut: ranged("audioFadeOut", 0, 10),
  muteOriginal: Schema.Boolean,
  audioLayers: Schema.Array(LayerSnapshot).pipe(Schema.maxItems(4))
})
export type LoopSnapshot = typeof LoopSnapshot.Type
