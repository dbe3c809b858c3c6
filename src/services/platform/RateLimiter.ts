import { Context, type Effect, Metric } from "effect"
import type { RedisError } from "./Redis.js"

export interface RateLimitPolicy {
  /** Names the limit in keys and logs, e.g. "health". */
  readonly name: string
  readonly limit: number
  readonly windowMs: number
}

export interface RateLimitDecision {
  readonly allowed: boolean
  readonly limit: number
  readonly remaining: number
  /** Milliseconds until the window has room again (0 when allowed and not full). */
  readonly resetMs: number
  /** When denied: milliseconds until one more request would pass. */
  readonly retryAfterMs: number
}

/** A limiter call never holds a request longer than this: past it the store counts as failed (RedisError). */
export const STORE_BUDGET_MS = 150

export interface RateLimiterShape {
  /**
   * Counts one request for `key` under `policy`; atomic across every instance sharing the store.
   * Answers or fails within STORE_BUDGET_MS.
   */
  readonly consume: (policy: RateLimitPolicy, key: string) => Effect.Effect<RateLimitDecision, RedisError>
}

export class RateLimiter extends Context.Tag("app/RateLimiter")<RateLimiter, RateLimiterShape>() {}

/**
 * Limit checks (rate limits and the login lockout) that the shared store could not answer, by the
 * decision taken: `local` (the in-process fallback decided) or `closed` (refused with 503).
 */
export const rateLimitStoreFailures = Metric.counter("rate_limit_store_failures_total", {
  description: "Rate-limit checks the store could not answer, by the decision taken"
})
