import { randomBytes } from "node:crypto"
import { Effect, Layer } from "effect"
import { RateLimiter, type RateLimitDecision, type RateLimitPolicy, STORE_BUDGET_MS } from "../../services/platform/RateLimiter.js"
import { Redis, RedisError } from "../../services/platform/Redis.js"

/**
 * Sliding-window log in Lua: one round trip, no read-modify-write race, and at most `limit`
 * requests in ANY window of `windowMs` (a fixed window lets up to 2x through at its edge). Time
 * comes from the Redis server so every instance shares one clock. A function, so the session
 * mirror's script (SessionMirrorRedis) counts a request with the same code.
 * Returns {allowed, remaining, resetMs, retryAfterMs}.
 */
export const SLIDING_WINDOW_FUNCTION = `
local function redisNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function slidingWindow(key, limit, window, member, now)
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
end
`

/** The general limit as a script of its own (the bench's Fastify peer runs it too). */
export const SLIDING_WINDOW = `${SLIDING_WINDOW_FUNCTION}
return slidingWindow(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], redisNowMs())
`

/** The sorted set holding `key`'s window under `policy`. */
export const windowKey = (policy: RateLimitPolicy, key: string) => `rl:${policy.name}:${key}`

/** This process's mark in window members: random, so replicas never collide. */
const PROCESS_MARK = randomBytes(6).toString("hex")
let memberCount = 0

/**
 * A member unique to this request in the window's sorted set: the process mark and a counter
 * (random bytes per request were a getrandom call each, on every authenticated request).
 */
export const windowMember = () => `${Date.now()}-${PROCESS_MARK}-${(memberCount = (memberCount + 1) % 1_000_000_000)}`

/** The script's reply as a decision. */
export const decisionOf = (
  limit: number,
  [allowed = 0, remaining = 0, resetMs = 0, retryAfterMs = 0]: ReadonlyArray<number>
): RateLimitDecision => ({
  allowed: allowed === 1,
  limit,
  remaining: Math.max(0, remaining),
  resetMs: Math.max(0, resetMs),
  retryAfterMs: Math.max(0, retryAfterMs)
})

/**
 * Runs `command` within STORE_BUDGET_MS with a plain timer: on the request path of every
 * authenticated call, `Effect.timeout` (two forked fibers racing) cost more than the Redis call.
 */
export const withinBudget = <A>(op: string, command: () => Promise<A>) =>
  Effect.async<A, RedisError>((resume) => {
    let done = false
    const timer = setTimeout(() => {
      done = true
      resume(Effect.fail(new RedisError({ op, cause: `no answer within ${STORE_BUDGET_MS} ms` })))
    }, STORE_BUDGET_MS)
    command().then(
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
        resume(Effect.fail(new RedisError({ op, cause })))
      }
    )
    return Effect.sync(() => {
      done = true
      clearTimeout(timer)
    })
  })

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
    return RateLimiter.of({
      consume: (policy, key) =>
        withinBudget("rate-limit", () => run(windowKey(policy, key), policy.limit, policy.windowMs, windowMember())).pipe(
          Effect.map((reply) => decisionOf(policy.limit, reply))
        )
    })
  })
)
