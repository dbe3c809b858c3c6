import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** No project with this id belongs to the caller (someone else's answers the same: no probing). */
export class LoopingProjectNotFound extends Schema.TaggedError<LoopingProjectNotFound>()(
  "LoopingProjectNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** No source video with this id belongs to the caller. */
export class LoopingVideoNotFound extends Schema.TaggedError<LoopingVideoNotFound>()(
  "LoopingVideoNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** No audio layer with this id belongs to the caller. */
export class AudioLayerNotFound extends Schema.TaggedError<AudioLayerNotFound>()(
  "AudioLayerNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The project already has a layer at this index (0-3): delete or edit it instead. */
export class AudioLayerTaken extends Schema.TaggedError<AudioLayerTaken>()(
  "AudioLayerTaken",
  { message: Schema.String, layerIndex: Schema.Number },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** The caller's looping generation exists but has no output to download (yet, or any more). */
export class LoopNotReady extends Schema.TaggedError<LoopNotReady>()(
  "LoopNotReady",
  { message: Schema.String, generationStatus: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}
