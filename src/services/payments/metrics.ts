import { Metric } from "effect"

/** Payment counters, exported with the others once /metrics exists. */
export const paymentsCreated = Metric.counter("payments_created", { description: "payments created (inquiry succeeded)", incremental: true })
export const paymentsSucceeded = Metric.counter("payments_succeeded", { description: "payments settled as paid (credits granted)", incremental: true })
export const paymentsFailed = Metric.counter("payments_failed", {
  description: "payments failed (gateway error at creation, or reported failed)",
  incremental: true
})
export const paymentsExpired = Metric.counter("payments_expired", { description: "pending payments expired", incremental: true })
/** Tagged with `reason`: source, signature, merchant_code, malformed, unknown_order, amount, unconfirmed. */
export const callbacksRejected = Metric.counter("payment_callbacks_rejected", { description: "callbacks refused, by reason", incremental: true })

export const rejected = (reason: string) => Metric.increment(Metric.tagged(callbacksRejected, "reason", reason))
