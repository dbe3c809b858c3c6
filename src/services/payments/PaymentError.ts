import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** Payment rule violations, each with the status it answers with (the body is the one error envelope). */

export class UnknownPackage extends Schema.TaggedError<UnknownPackage>()(
  "UnknownPackage",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** The client's amount, credits or product name disagree with the server's package. */
export class PriceMismatch extends Schema.TaggedError<PriceMismatch>()(
  "PriceMismatch",
  { message: Schema.String, field: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class PaymentsNotConfigured extends Schema.TaggedError<PaymentsNotConfigured>()(
  "PaymentsNotConfigured",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

export class TooManyPendingPayments extends Schema.TaggedError<TooManyPendingPayments>()(
  "TooManyPendingPayments",
  { message: Schema.String, limit: Schema.Number },
  HttpApiSchema.annotations({ status: 409 })
) {}

export class PaymentNotFound extends Schema.TaggedError<PaymentNotFound>()(
  "PaymentNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** A callback whose signature or merchant code does not verify. */
export class InvalidSignature extends Schema.TaggedError<InvalidSignature>()(
  "InvalidSignature",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** A callback from an address that is not Duitku's, or over plain http through the proxy in production. */
export class CallbackSourceRefused extends Schema.TaggedError<CallbackSourceRefused>()(
  "CallbackSourceRefused",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/** A verified callback whose fields are unusable (missing, non-numeric amount). */
export class InvalidCallback extends Schema.TaggedError<InvalidCallback>()(
  "InvalidCallback",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class AmountMismatch extends Schema.TaggedError<AmountMismatch>()(
  "AmountMismatch",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** A paid callback that the transaction status API does not confirm (yet): the gateway retries it. */
export class StatusNotConfirmed extends Schema.TaggedError<StatusNotConfirmed>()(
  "StatusNotConfirmed",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}
