import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Effect, Option } from "effect"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { type Payment, Payments } from "../../services/payments/Payments.js"
import { Api } from "../Api.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"

const view = (payment: Payment) => ({
  paymentId: payment.id,
  merchantOrderId: payment.merchantOrderId,
  reference: payment.reference,
  paymentUrl: payment.paymentUrl,
  packageId: payment.packageId,
  amount: payment.amount,
  credits: payment.credits,
  status: payment.status,
  createdAt: payment.createdAt.toISOString(),
  expiresAt: payment.expiresAt.toISOString(),
  settledAt: payment.settledAt === null ? null : payment.settledAt.toISOString()
})

export const PaymentsHandlers = HttpApiBuilder.group(Api, "payments", (handlers) =>
  Effect.gen(function*() {
    const payments = yield* Payments
    const guard = yield* RateLimitGuard

    return handlers
      .handle("packages", () =>
        Effect.map(payments.packages(), (packages) => ({ success: true as const, data: { packages } })))
      .handle(
        "create",
        Effect.fn("PaymentsHttp.create")(function*({ payload }) {
          const user = yield* CurrentUser
          // Per user, failing closed (503) when Redis cannot count: creation starts paid work.
          yield* guard.enforce("payment", `user:${user.id}`)
          const created = yield* payments.create({ id: user.id, email: user.email }, payload)
          return {
            success: true as const,
            paymentUrl: created.paymentUrl,
            reference: created.reference,
            merchantOrderId: created.merchantOrderId,
            data: created
          }
        })
      )
      .handle(
        "callback",
        Effect.fn("PaymentsHttp.callback")(function*({ payload }) {
          const request = yield* HttpServerRequest.HttpServerRequest
          const result = yield* payments.handleCallback(payload, {
            peer: Option.getOrUndefined(request.remoteAddress),
            forwardedFor: request.headers["x-forwarded-for"],
            forwardedProto: request.headers["x-forwarded-proto"]
          })
          return { success: true as const, status: result.status, merchantOrderId: result.merchantOrderId }
        })
      )
      .handle(
        "status",
        Effect.fn("PaymentsHttp.status")(function*({ path }) {
          const user = yield* CurrentUser
          const payment = yield* payments.status(user.id, path.merchantOrderId)
          return { success: true as const, data: view(payment) }
        })
      )
      .handle(
        "adminList",
        Effect.fn("PaymentsHttp.adminList")(function*({ urlParams }) {
          const items = yield* payments.list(urlParams)
          return { items: items.map((p) => ({ ...view(p), userId: p.userId })) }
        })
      )
      .handle(
        "adminGet",
        Effect.fn("PaymentsHttp.adminGet")(function*({ path }) {
          const { callbacks, payment } = yield* payments.details(path.paymentId)
          return {
            payment: { ...view(payment), userId: payment.userId, paymentMethod: payment.paymentMethod, failureReason: payment.failureReason },
            callbacks: callbacks.map((c) => ({
              id: String(c.id),
              outcome: c.outcome,
              sourceAddress: c.sourceAddress,
              fields: c.fields,
              receivedAt: c.receivedAt.toISOString()
            }))
          }
        })
      )
  }))
