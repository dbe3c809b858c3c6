import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import { Health } from "../../services/platform/Health.js"
import { AdminCredentials } from "./AdminAuth.js"
import { Api } from "../Api.js"
import { requestBearerToken } from "./bearer.js"
import { RateLimitGuard } from "./RateLimitGuard.js"
import { readinessAnswer } from "./readinessAnswer.js"

// Built once: every liveness answer is the same bytes.
const LIVENESS = HttpServerResponse.unsafeJson({ status: "ok" })

export const HealthHandlers = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const health = yield* Health
    const guard = yield* RateLimitGuard
    const credentials = yield* AdminCredentials

    /** An administrator's bearer credential; a missing or invalid one is not an error here, only the public view. */
    const isAdmin = Effect.flatMap(requestBearerToken, Option.match({
      onNone: () => Effect.succeed(false),
      onSome: (token) =>
        credentials.isAdmin(token).pipe(Effect.tap((admin) =>
          admin ? Effect.void : Effect.logWarning("detailed health report with an invalid bearer token; answered the public view")
        ))
    }))

    const detailed = Effect.gen(function*() {
      // Fails open: the detailed report is a cheap read that must still answer while Redis is down.
      yield* guard.enforce("health", yield* guard.clientAddress)
      const [report, admin] = yield* Effect.all([health.detailed(), isAdmin], { concurrency: 2 })
      return HttpServerResponse.unsafeJson(admin ? report.body : report.publicBody, {
        status: report.healthy ? 200 : 503,
        // one URL, two views: caches must key on the credential and keep neither
        headers: { "cache-control": "no-store", vary: "Authorization" }
      })
    })

    return handlers
      .handle("liveness", () => Effect.succeed(LIVENESS))
      .handle("readiness", () =>
        health.readiness().pipe(
          Effect.map((report) => {
            const answer = readinessAnswer(report)
            return HttpServerResponse.text(answer.body, { status: answer.status, contentType: "application/json" })
          })
        ))
      .handle("detailed", () => detailed)
      .handle("detailedApi", () => detailed)
  }))
