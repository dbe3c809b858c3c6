import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

// Raised by the services and defined with them (imports point from http to services, never back);
// re-exported so every handler finds the whole error vocabulary here.
export { Conflict, ValidationError } from "../../services/platform/DomainError.js"
export { AccountLocked, Unauthorized } from "../../services/accounts/AuthError.js"
export { InsufficientCredits } from "../../services/credits/LedgerError.js"

/**
 * Errors that cross the HTTP boundary. Each carries its status; the ErrorEnvelope middleware turns
 * every one of them (and every other failure) into the one error body of this API:
 * `{ success: false, error, message, code, requestId, ...fields }`.
 */

export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { message: Schema.String, limitBytes: Schema.Number },
  HttpApiSchema.annotations({ status: 413 })
) {}

export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited",
  { message: Schema.String, retryAfter: Schema.Number, limit: Schema.Number },
  HttpApiSchema.annotations({ status: 429 })
) {}

export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()(
  "ServiceUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

export class InternalError extends Schema.TaggedError<InternalError>()(
  "InternalError",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 500 })
) {}

/** The error body every failing response carries (documented in OpenAPI). */
export const ErrorBody = Schema.Struct({
  success: Schema.Literal(false),
  error: Schema.String,
  message: Schema.String,
  code: Schema.String,
  requestId: Schema.String
}).annotations({ identifier: "ErrorBody" })

/** "InsufficientCredits" -> "INSUFFICIENT_CREDITS". */
export const errorCode = (tag: string): string =>
  tag.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/([A-Z])([A-Z][a-z])/g, "$1_$2").toUpperCase()
