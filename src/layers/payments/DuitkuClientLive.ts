import { Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { DuitkuClient, PaymentGatewayError } from "../../services/payments/DuitkuClient.js"
import { INQUIRY_PATH, STATUS_PATH } from "../../services/payments/duitkuFacts.js"
import { inquirySignature, statusSignature } from "../../services/payments/signature.js"

/** The fields of a v2 inquiry answer we use (docs.duitku.com/api/en, "Request Transaction"). */
const InquiryAnswer = Schema.Struct({
  statusCode: Schema.optional(Schema.String),
  statusMessage: Schema.optional(Schema.String),
  reference: Schema.String.pipe(Schema.minLength(1)),
  paymentUrl: Schema.String.pipe(Schema.pattern(/^https?:\/\//))
})

/** The fields of a transaction status answer we use (docs.duitku.com/api/en, "Check Transaction"). */
const StatusAnswer = Schema.Struct({
  statusCode: Schema.String,
  amount: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  reference: Schema.optional(Schema.NullOr(Schema.String))
})

const gatewayError = (reason: PaymentGatewayError["reason"], message: string) => new PaymentGatewayError({ reason, message })

/**
 * DuitkuClient over fetch. Each call has its own deadline (DUITKU_TIMEOUT, an AbortSignal, so the
 * socket is dropped when it passes) and its failure is classified: timeout, unreachable, an HTTP
 * error status, a refusal in the body (statusCode other than "00"), or an answer we cannot read.
 * Holds no resource beyond each call (fetch's connection pool is the process's).
 */
export const DuitkuClientLive = Layer.effect(
  DuitkuClient,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const settings = config.duitku
    const merchantCode = Option.getOrElse(Option.map(settings.merchantCode, Redacted.value), () => "")
    const apiKey = Option.getOrElse(Option.map(settings.apiKey, Redacted.value), () => "")
    const timeoutMs = Duration.toMillis(settings.timeout)

    const post = (path: string, body: Record<string, unknown>) =>
      Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(`${settings.baseUrl}${path}`, {
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json" },
            body: JSON.stringify(body),
            signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
          })
          const text = await response.text()
          return { status: response.status, text }
        },
        catch: (cause) =>
          cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError")
            ? gatewayError("timeout", `the payment gateway did not answer within ${timeoutMs} ms`)
            : gatewayError("unreachable", "the payment gateway could not be reached")
      }).pipe(
        Effect.flatMap(({ status, text }) => {
          if (status < 200 || status > 299) {
            return Effect.zipRight(
              Effect.logWarning("payment gateway answered an error status", { path, status, body: text.slice(0, 200) }),
              Effect.fail(gatewayError("http_status", `the payment gateway answered ${status}`))
            )
          }
          try {
            return Effect.succeed(JSON.parse(text) as unknown)
          } catch {
            return Effect.fail(gatewayError("malformed", "the payment gateway's answer could not be read"))
          }
        })
      )

    return DuitkuClient.of({
      inquiry: Effect.fn("DuitkuClient.inquiry")(function*(request) {
        if (merchantCode === "" || apiKey === "") return yield* gatewayError("rejected", "payments are not configured")
        const json = yield* post(INQUIRY_PATH, {
          merchantCode,
          paymentAmount: request.amount,
          paymentMethod: settings.paymentMethod,
          merchantOrderId: request.merchantOrderId,
          productDetails: request.productDetails,
          email: request.email,
          customerVaName: request.customerName,
          merchantUserInfo: request.email,
          callbackUrl: Option.getOrElse(settings.callbackUrl, () => ""),
          returnUrl: Option.getOrElse(settings.returnUrl, () => ""),
          expiryPeriod: request.expiryMinutes,
          signature: inquirySignature(merchantCode, request.merchantOrderId, request.amount, apiKey)
        })
        const answer = yield* Schema.decodeUnknown(InquiryAnswer)(json).pipe(
          Effect.mapError(() => gatewayError("malformed", "the payment gateway's answer lacks a reference or payment URL"))
        )
        if (answer.statusCode !== undefined && answer.statusCode !== "00") {
          yield* Effect.logWarning("payment gateway refused the inquiry", { statusCode: answer.statusCode, statusMessage: answer.statusMessage })
          return yield* gatewayError("rejected", "the payment gateway refused the payment")
        }
        return { reference: answer.reference, paymentUrl: answer.paymentUrl }
      }),
      status: Effect.fn("DuitkuClient.status")(function*(merchantOrderId) {
        if (merchantCode === "" || apiKey === "") return yield* gatewayError("rejected", "payments are not configured")
        const json = yield* post(STATUS_PATH, {
          merchantCode,
          merchantOrderId,
          signature: statusSignature(merchantCode, merchantOrderId, apiKey)
        })
        const answer = yield* Schema.decodeUnknown(StatusAnswer)(json).pipe(
          Effect.mapError(() => gatewayError("malformed", "the payment gateway's status answer could not be read"))
        )
        return {
          statusCode: answer.statusCode,
          amount: answer.amount === undefined ? undefined : String(answer.amount),
          reference: answer.reference ?? undefined
        }
      })
    })
  })
)
