import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { Health } from "../../services/Health.js"
import { Api } from "../Api.js"
import { RateLimitGuard } from "../RateLimitGuard.js"

// Built once: every liveness answer is the same bytes.
const LIVENESS = HttpServerResponse.unsafeJson({ status: "ok" })

export const HealthHandlers = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const health = yield* Health
    const guard = yield* RateLimitGuard

    const detailed = Effect.gen(function*() {
      // Fails open: the detailed report is a cheap read that must still answer while Redis is down.
      yield* guard.enforce("health", yield* guard.clientAddress)
      const report = yield* health.detailed()
      return HttpServerResponse.unsafeJson(report.body, { status: report.healthy ? 200 : 503 })
    })

    return handlers
      .handle("liveness", () => Effect.succeed(LIVENESS))
      .handle("readiness", () =>
        health.readiness().pipe(
          Effect.map((report) =>
            HttpServerResponse.unsafeJson(
              {
                status: report.ready ? "ready" : "not_ready",
                ...(report.reason === undefined ? {} : { reason: report.reason }),
                checks: report.checks
              },
              { status: report.ready ? 200 : 503 }
            )
          )
        ))
      .handle("detailed", () => detailed)
      .handle("detailedApi", () => detailed)
  }))
