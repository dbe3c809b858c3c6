import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** No generation with this id belongs to the caller (someone else's answers the same: no probing). */
export class GenerationNotFound extends Schema.TaggedError<GenerationNotFound>()(
  "GenerationNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The job queue (or the database) could not take the generation: nothing was stored or charged. */
export class GenerationsUnavailable extends Schema.TaggedError<GenerationsUnavailable>()(
  "GenerationsUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** The generation has already finished (or was cancelled): it can no longer be cancelled. */
export class GenerationFinished extends Schema.TaggedError<GenerationFinished>()(
  "GenerationFinished",
  { message: Schema.String, generationStatus: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}
