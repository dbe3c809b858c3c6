import { HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Metric, Option } from "effect"
import { makeLocalRateLimiter } from "../../services/platform/localRateLimiter.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { type RateLimitDecision, RateLimiter, type RateLimitPolicy, rateLimitStoreFailures } from "../../services/platform/RateLimiter.js"
import { type PolicyName, rateLimitPolicies, type StoreFailureMode } from "../../services/platform/rateLimitPolicies.js"
import { RateLimited, ServiceUnavailable } from "./ApiError.js"
import { countRateLimitRejection } from "../../services/platform/metrics.js"
import { makeClientAddressResolver } from "../../services/platform/clientAddress.js"
import { rateLimitHeaders, retryAfterSeconds } from "./rateLimitHeaders.js"

export type { PolicyName, StoreFailureMode } from "../../services/platform/rateLimitPolicies.js"

export { rateLimitStoreFailures }

/**
 * Applies rate limits from handlers and middleware: keys by user id or by client address (via
 * TRUSTED_PROXIES only), sets RateLimit-* and X-RateLimit-* on the response, fails with 429 and
 * Retry-After when over, and when Redis cannot answer either decides with an in-process limiter
 * of the same policy or refuses with 503 (see StoreFailureMode). Both are logged and counted.
 */
export class RateLimitGuard extends Effect.Service<RateLimitGuard>()("app/RateLimitGuard", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const limiter = yield* RateLimiter
    const resolver = makeClientAddressResolver(config.http.trustedProxies)
    const policies = config.rateLimits
    const local = makeLocalRateLimiter()

    const clientAddress = Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
      resolver.resolve(Option.getOrUndefined(request.remoteAddress), request.headers["x-forwarded-for"]) ?? "unknown-peer")

    /** Each policy as the limiter takes it, made once. */
    const policyCache = new Map<PolicyName, RateLimitPolicy>()
    const policy = (name: PolicyName): RateLimitPolicy => {
      let found = policyCache.get(name)
      if (found === undefined) {
        const limit = policies[name]
        found = { name, limit: limit.limit, windowMs: Duration.toMillis(limit.window) }
        policyCache.set(name, found)
      }
      return found
    }

    /** The 429 of a decision of `policy` that is over its limit, counted as a rejection when it is made (as it is answered). */
    const refusal = (decision: RateLimitDecision, policy: PolicyName) => {
      countRateLimitRejection(policy)
      return new RateLimited({ message: "Too many requests; try again later", retryAfter: retryAfterSeconds(decision), limit: decision.limit })
    }

    /** Answers a decision of `policy` already taken: the RateLimit-* headers on the response, 429 (counted) when over. */
    const apply = (decision: RateLimitDecision, policy: PolicyName): Effect.Effect<void, RateLimited> => {
      const headers = rateLimitHeaders(decision)
      const withHeaders = HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(HttpServerResponse.setHeaders(response, headers)))
      if (decision.allowed) return withHeaders
      return Effect.zipRight(withHeaders, Effect.suspend(() => Effect.fail(refusal(decision, policy))))
    }

    /**
     * The decision of one request against a policy, without answering it (`apply` does). `onStoreFailure`
     * overrides the policy's own mode (a test, or a route stricter than its policy). The limiter bounds
     * its own wait (STORE_BUDGET_MS). Untraced: it runs on every authenticated request.
     */
    const decide = Effect.fnUntraced(function*(
      name: PolicyName,
      key: string,
      onStoreFailure: StoreFailureMode = rateLimitPolicies[name].storeFailure
    ) {
      const limits = policy(name)
      const shared = yield* Effect.either(limiter.consume(limits, key))
      if (shared._tag === "Right") return shared.right
      yield* Metric.update(Metric.tagged(Metric.tagged(rateLimitStoreFailures, "decision", onStoreFailure), "policy", name), 1)
      yield* Effect.logWarning(
        onStoreFailure === "closed" ? "rate limiter unavailable; failing closed" : "rate limiter unavailable; limiting in this process",
        { policy: name, error: shared.left._tag }
      )
      if (onStoreFailure === "closed") {
        return yield* new ServiceUnavailable({ message: "This service is briefly unavailable; try again shortly" })
      }
      return yield* local.consume(limits, key)
    })

    /** Decides and answers: the RateLimit-* headers on the response, 429 when over. */
    const enforce = (name: PolicyName, key: string, onStoreFailure?: StoreFailureMode) =>
      Effect.flatMap(decide(name, key, onStoreFailure), (decision) => apply(decision, name))

    return { clientAddress, enforce, decide, policy, apply, refusal }
  })
}) {}
