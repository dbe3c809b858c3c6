import { Duration, Effect, Schema } from "effect"
import { defineJob } from "../../services/jobs/JobDefinition.js"
import { Payments } from "../../services/payments/Payments.js"
import type { JobHandler, WorkerServices } from "../jobs/runtime.js"

/** The periodic payments job: no payload of its own; each run looks at the payments table. */
export const paymentMaintenanceJob = defineJob({
  queue: "payment-maintenance",
  payload: Schema.Struct({}),
  timeout: Duration.minutes(2),
  concurrency: 1,
  repeat: { every: (config) => config.duitku.reconcileInterval, payload: {} }
})

/**
 * Expires pending payments past their expiry and, with DUITKU_VERIFY_STATUS, settles pending ones the
 * gateway reports paid or failed (Payments.maintain). Safe to run twice at once: every transition is
 * conditional on the payment still being pending.
 */
export const paymentMaintenanceHandler: JobHandler<{}, {}, WorkerServices> = {
  definition: paymentMaintenanceJob,
  run: () =>
    Effect.flatMap(Payments, (payments) => payments.maintain()).pipe(
      Effect.tap((result) =>
        result.expired + result.succeeded + result.failed > 0 ? Effect.logInfo("payments maintained", result) : Effect.void
      )
    )
}
