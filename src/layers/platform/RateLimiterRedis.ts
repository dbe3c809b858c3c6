import { randomBytes } from "node:crypto"
import { Effect, Layer } from "effect"
import { RateLimiter, type RateLimitDecision, STORE_BUDGET_MS } from "../../services/platform/RateLimiter.js"
import { Redis, RedisError } from "../../services/platform/Redis.js"

/**
 * Sliding-window log in one Lua script: one round trip, no read-modify-write race, and at most
 * `limit` requests in ANY window of `windowMs` (a fixed window lets up to 2x through at its edge).
 * Time comes from the Redis server so every instance shares one clock.
 * Returns {allowed, remaining, resetMs, retryAfterMs}.
 */
const SLIDING_WINDOW = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  return {1, limit - count - 1, oldest + window - now, 0}
end
local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
local retry = oldest + window - now
return {0, 0, retry, retry}
`

/** Stateless apart from the Redis connection it borrows; owns nothing to release. */
export const RateLimiterRedis = Layer.effect(
  RateLimiter,
  Effect.gen(function*() {
    const redis = yield* Redis
    redis.client.defineCommand("lumikuSlidingWindow", { numberOfKeys: 1, lua: SLIDING_WINDOW })
    const run = (key: string, limit: number, windowMs: number, member: string) =>
      // defineCommand adds the method at runtime; ioredis' types cannot know about it.
      (redis.client as unknown as Record<string, (...args: Array<string | number>) => Promise<Array<number>>>)[
        "lumikuSlidingWindow"
      ]!(key, limit, windowMs, member)
    /**
     * The script, bounded by STORE_BUDGET_MS with a plain timer: on the request path of every
     * authenticated call, `Effect.timeout` (two forked fibers racing) cost more than the Redis call.
     */
    const runWithinBudget = (key: string, limit: number, windowMs: number, member: string) =>
      Effect.async<Array<number>, RedisError>((resume) => {
        let done = false
        const timer = setTimeout(() => {
          done = true
          resume(Effect.fail(new RedisError({ op: "rate-limit", cause: `no answer within ${STORE_BUDGET_MS} ms` })))
        }, STORE_BUDGET_MS)
        run(key, limit, windowMs, member).then(
          (reply) => {
            if (done) return
            done = true
            clearTimeout(timer)
            resume(Effect.succeed(reply))
          },
          (cause: unknown) => {
            if (done) return
            done = true
            clearTimeout(timer)
            resume(Effect.fail(new RedisError({ op: "rate-limit", cause })))
          }
        )
        return Effect.sync(() => {
          done = true
          clearTimeout(timer)
        })
      })
    return RateLimiter.of({
      consume: (policy, key) =>
        Effect.suspend(() => {
          const member = `${Date.now()}-${randomBytes(6).toString("hex")}`
          return runWithinBudget(`rl:${policy.name}:${key}`, policy.limit, policy.windowMs, member)
        }).pipe(Effect.map(([allowed = 0, remaining = 0, resetMs = 0, retryAfterMs = 0]): RateLimitDecision => ({
          allowed: allowed === 1,
          limit: policy.limit,
          remaining: Math.max(0, remaining),
          resetMs: Math.max(0, resetMs),
          retryAfterMs: Math.max(0, retryAfterMs)
        })))
    })
  })
)
