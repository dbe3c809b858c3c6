import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** What sign-in and session checks refuse with, and the HTTP status of each. */

/** Too many failed logins for this email or client address; the lock lifts after retryAfter seconds. */
export class AccountLocked extends Schema.TaggedError<AccountLocked>()(
  "AccountLocked",
  { message: Schema.String, retryAfter: Schema.Number },
  HttpApiSchema.annotations({ status: 429 })
) {}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}
