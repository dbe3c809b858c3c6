import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * Rule violations any service may report, each with the HTTP status it answers with (the error body
 * is made in http/middleware/errorEnvelope.ts).
 */

/** A request that is well-formed but breaks a rule (code VALIDATION_ERROR, like schema failures). */
export class ValidationError extends Schema.TaggedError<ValidationError>()(
  "ValidationError",
  { message: Schema.String, field: Schema.optional(Schema.String) },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}
