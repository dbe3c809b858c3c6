import { HttpApiSchema } from "@effect/platform"
import { Data, Schema } from "effect"

/** Amounts are positive safe integers; anything else is refused before a transaction starts. */
export class InvalidAmount extends Data.TaggedError("InvalidAmount")<{
  readonly amount: number
  readonly reason: string
}> {
  override get message() {
    return `invalid amount ${this.amount}: ${this.reason}`
  }
}

export class UserNotFound extends Data.TaggedError("UserNotFound")<{
  readonly userId: string
}> {
  override get message() {
    return `no user ${this.userId}`
  }
}

/** A refund named a charge key that no ledger row has. */
export class ChargeNotFound extends Data.TaggedError("ChargeNotFound")<{
  readonly chargeKey: string
}> {
  override get message() {
    return `no charge with key ${this.chargeKey}`
  }
}

/** Only usage charges are refunded: not credits, adjustments, or refunds themselves. */
export class NotRefundable extends Data.TaggedError("NotRefundable")<{
  readonly key: string
  readonly kind: string
}> {
  override get message() {
    return `ledger entry ${this.key} is a ${this.kind}, not a usage charge`
  }
}

/** What a repeated idempotency key differed in from the operation that first used it. */
export type ReplayMismatch = "user" | "kind" | "amount" | "reference"

/** An idempotency key already names a different operation (another user, kind, amount, reference or charge). */
export class IdempotencyKeyReused extends Data.TaggedError("IdempotencyKeyReused")<{
  readonly key: string
  readonly mismatch?: ReadonlyArray<ReplayMismatch> | undefined
}> {
  override get message() {
    const what = this.mismatch === undefined || this.mismatch.length === 0 ? "" : ` (another ${this.mismatch.join(", ")})`
    return `idempotency key ${this.key} was already used for a different operation${what}`
  }
}

/** A charge the balance does not cover: `required` credits were asked for, `current` are available. */
export class InsufficientCredits extends Schema.TaggedError<InsufficientCredits>()(
  "InsufficientCredits",
  { message: Schema.String, required: Schema.Number, current: Schema.Number },
  HttpApiSchema.annotations({ status: 402 })
) {}
