import { Effect } from "effect"
import { ExpiringMap } from "./ExpiringMap.js"
import type { RateLimitDecision, RateLimitPolicy } from "./RateLimiter.js"

/** Keys one instance tracks while Redis is away (each holds at most `limit` timestamps). */
export const LOCAL_LIMITER_MAX_KEYS = 10_000

/**
 * The same sliding-window log as RateLimiterRedis, held in this process: the fallback while Redis
 * cannot answer, so a limit degrades to "limit per instance" instead of vanishing. Memory is
 * bounded by ExpiringMap (expired windows dropped, at most `maxKeys` keys). Owns no resource.
 */
export const makeLocalRateLimiter = (maxKeys: number = LOCAL_LIMITER_MAX_KEYS) => {
  const windows = new ExpiringMap<Array<number>>(maxKeys)
  const consume = (policy: RateLimitPolicy, key: string): Effect.Effect<RateLimitDecision> =>
    Effect.sync(() => {
      const now = Date.now()
      const id = `${policy.name}:${key}`
      const times = (windows.get(id, now)?.value ?? []).filter((t) => t > now - policy.windowMs)
      if (times.length < policy.limit) {
        times.push(now)
        windows.set(id, times, now + policy.windowMs, now)
        return {
          allowed: true,
          limit: policy.limit,
          remaining: policy.limit - times.length,
          resetMs: times[0]! + policy.windowMs - now,
          retryAfterMs: 0
        }
      }
      windows.set(id, times, (times[times.length - 1] ?? now) + policy.windowMs, now)
      const retry = Math.max(1, (times[0] ?? now) + policy.windowMs - now)
      return { allowed: false, limit: policy.limit, remaining: 0, resetMs: retry, retryAfterMs: retry }
    })
  return { consume, size: () => windows.size }
}
