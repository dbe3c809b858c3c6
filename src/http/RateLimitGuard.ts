import { HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Metric, Option } from "effect"
import { AppConfig } from "../services/AppConfig.js"
import { RateLimiter, type RateLimitPolicy } from "../services/RateLimiter.js"
import { RateLimited, ServiceUnavailable } from "./ApiError.js"
import { makeClientAddressResolver } from "./clientAddress.js"
import { rateLimitHeaders, retryAfterSeconds } from "./rateLimitHeaders.js"

/** What a route does when the limiter's store (Redis) cannot answer. */
export type StoreFailureMode = "open" | "closed"

/** The presets of the original system; each can be overridden, see rateLimitPolicies in AppConfigLive. */
export type PolicyName = "health" | "login" | "register" | "general" | "ai" | "upload" | "preset" | "projectCreate" | "payment"

/** A limiter call never holds a request longer than this; past it the store counts as failed. */
const STORE_BUDGET = Duration.millis(150)

export const rateLimitStoreFailures = Metric.counter("rate_limit_store_failures_total", {
  description: "Rate-limit checks the store could not answer, by the decision taken"
})

/**
 * Applies rate limits from handlers and middleware: keys by user id or by client address (via
 * TRUSTED_PROXIES only), sets RateLimit-* and X-RateLimit-* on the response, fails with 429 and
 * Retry-After when over, and when Redis cannot answer either lets the request through (cheap
 * reads) or refuses it with 503 (expensive routes). Both decisions are logged and counted.
 */
export class RateLimitGuard extends Effect.Service<RateLimitGuard>()("app/RateLimitGuard", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const limiter = yield* RateLimiter
    const resolver = makeClientAddressResolver(config.http.trustedProxies)
    const policies = config.rateLimits

    const clientAddress = Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
      resolver.resolve(Option.getOrUndefined(request.remoteAddress), request.headers["x-forwarded-for"]) ?? "unknown-peer")

    const enforce = Effect.fn("RateLimitGuard.enforce")(function*(name: PolicyName, key: string, onStoreFailure: StoreFailureMode) {
      const limit = policies[name]
      const policy: RateLimitPolicy = { name, limit: limit.limit, windowMs: Duration.toMillis(limit.window) }
      const decision = yield* limiter.consume(policy, key).pipe(Effect.timeout(STORE_BUDGET), Effect.either)
      if (decision._tag === "Left") {
        yield* Metric.update(Metric.tagged(Metric.tagged(rateLimitStoreFailures, "decision", onStoreFailure), "policy", name), 1)
        yield* Effect.logWarning(`rate limiter unavailable; failing ${onStoreFailure}`, { policy: name, error: decision.left._tag })
        if (onStoreFailure === "closed") {
          return yield* new ServiceUnavailable({ message: "This service is briefly unavailable; try again shortly" })
        }
        return
      }
      const headers = rateLimitHeaders(decision.right)
      yield* HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(HttpServerResponse.setHeaders(response, headers)))
      if (!decision.right.allowed) {
        return yield* new RateLimited({
          message: "Too many requests; try again later",
          retryAfter: retryAfterSeconds(decision.right),
          limit: decision.right.limit
        })
      }
    })

    return { clientAddress, enforce }
  })
}) {}
