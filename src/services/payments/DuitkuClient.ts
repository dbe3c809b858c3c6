import { HttpApiSchema } from "@effect/platform"
import { Context, type Effect, Schema } from "effect"

/** The Duitku API could not be used: answered 502 with the standard error body; the cause is logged, never answered. */
export class PaymentGatewayError extends Schema.TaggedError<PaymentGatewayError>()(
  "PaymentGatewayError",
  {
    message: Schema.String,
    /** timeout | unreachable | http_status | rejected | malformed */
    reason: Schema.Literal("timeout", "unreachable", "http_status", "rejected", "malformed")
  },
  HttpApiSchema.annotations({ status: 502 })
) {}

export interface InquiryRequest {
  readonly merchantOrderId: string
  /** Whole rupiah. */
  readonly amount: number
  readonly productDetails: string
  readonly email: string
  readonly customerName: string
  readonly expiryMinutes: number
}

export interface InquiryResult {
  readonly reference: string
  readonly paymentUrl: string
}

export interface TransactionStatus {
  /** "00" success, "01" pending, "02" failed or cancelled (duitkuFacts.ts). */
  readonly statusCode: string
  readonly amount: string | undefined
  readonly reference: string | undefined
}

/** The port to Duitku's API (layers/payments/DuitkuClientLive.ts); tests talk to a local double of the gateway. */
export interface DuitkuClientShape {
  readonly inquiry: (request: InquiryRequest) => Effect.Effect<InquiryResult, PaymentGatewayError>
  readonly status: (merchantOrderId: string) => Effect.Effect<TransactionStatus, PaymentGatewayError>
}

export class DuitkuClient extends Context.Tag("app/DuitkuClient")<DuitkuClient, DuitkuClientShape>() {}
