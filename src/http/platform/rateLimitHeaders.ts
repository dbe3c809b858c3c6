import type { RateLimitDecision } from "../../services/platform/RateLimiter.js"

/** RateLimit-* (IETF draft -06 names) plus the X-RateLimit-* twins the Lumiku web app reads. */
export const rateLimitHeaders = (decision: RateLimitDecision): Record<string, string> => {
  const reset = String(Math.ceil(decision.resetMs / 1000))
  const remaining = String(decision.remaining)
  const limit = String(decision.limit)
  return {
    "ratelimit-limit": limit,
    "ratelimit-remaining": remaining,
    "ratelimit-reset": reset,
    "x-ratelimit-limit": limit,
    "x-ratelimit-remaining": remaining,
    "x-ratelimit-reset": reset
  }
}

/** Whole seconds, at least 1, as Retry-After wants. */
export const retryAfterSeconds = (decision: RateLimitDecision): number =>
  Math.max(1, Math.ceil(decision.retryAfterMs / 1000))
