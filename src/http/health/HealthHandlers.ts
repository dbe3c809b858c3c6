import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Option } from "effect"
import { AppConfig } from "../../services/AppConfig.js"
import { Health } from "../../services/Health.js"
import { RateLimiter, type RateLimitPolicy } from "../../services/RateLimiter.js"
import { RateLimited } from "../ApiError.js"
import { Api } from "../Api.js"
import { makeClientAddressResolver } from "../clientAddress.js"
import { rateLimitHeaders, retryAfterSeconds } from "../rateLimitHeaders.js"

// Built once: every liveness answer is the same bytes.
const LIVENESS = HttpServerResponse.unsafeJson({ status: "ok" })

/** A probe never waits on the limiter for longer than this; past it the request passes. */
const LIMITER_BUDGET = Duration.millis(100)

export const HealthHandlers = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const health = yield* Health
    const limiter = yield* RateLimiter
    const clientAddress = makeClientAddressResolver(config.http.trustedProxies)
    const policy: RateLimitPolicy = { name: "health", limit: config.health.rateLimitPerMinute, windowMs: 60_000 }

    const detailed = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const client = clientAddress.resolve(
        Option.getOrUndefined(request.remoteAddress),
        request.headers["x-forwarded-for"]
      ) ?? "unknown-peer"
      // Fails open: the detailed report is a cheap read that must still answer while Redis is down.
      const decision = yield* limiter.consume(policy, client).pipe(
        Effect.timeout(LIMITER_BUDGET),
        Effect.tapError((error) => Effect.logDebug("health rate limiter unavailable; allowing", { error: error._tag })),
        Effect.option
      )
      if (Option.isSome(decision) && !decision.value.allowed) {
        return yield* new RateLimited({
          message: "Too many health requests; try again later",
          retryAfter: retryAfterSeconds(decision.value),
          limit: decision.value.limit
        })
      }
      const report = yield* health.detailed()
      return HttpServerResponse.unsafeJson(report.body, {
        status: report.healthy ? 200 : 503,
        headers: Option.match(decision, { onNone: () => ({}), onSome: rateLimitHeaders })
      })
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
