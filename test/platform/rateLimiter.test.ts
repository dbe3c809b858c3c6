import { Effect, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { RateLimiterRedis } from "../../src/layers/platform/RateLimiterRedis.js"
import { RedisLive } from "../../src/layers/platform/RedisLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { RateLimiter, type RateLimiterShape } from "../../src/services/platform/RateLimiter.js"

describe("sliding-window rate limiter on Redis", () => {
  let limiter: RateLimiterShape
  let scope: Scope.CloseableScope
  beforeAll(async () => {
    scope = Effect.runSync(Scope.make())
    const layer = RateLimiterRedis.pipe(
      Layer.provide(RedisLive),
      Layer.provide(Layer.effect(AppConfig, appConfigFrom({ REDIS_KEY_PREFIX: inject("redisKeyPrefix"), LOG_LEVEL: "silent" }))),
      Layer.provide(Logger.minimumLogLevel(LogLevel.None))
    )
    const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
    limiter = Effect.runSync(Effect.provide(RateLimiter, context))
  })
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

  it("never lets more than the limit through in any window, across a window edge", async () => {
    const policy = { name: "edge-test", limit: 5, windowMs: 1_000 }
    // The limiter decides on Redis' clock: a decision happened somewhere between its burst's send and
    // receive times, so only decisions whose whole interval fits in one window are counted together
    // (a client-side timestamp after the burst put two bursts 1.0x s apart on Redis within 1 s here).
    const allowed: Array<{ readonly sent: number; readonly received: number }> = []
    const start = Date.now()
    // Bursts just before and just after where a fixed window would reset, and in between.
    for (const at of [0, 50, 900, 980, 1_010, 1_060, 1_500, 1_990, 2_020, 2_500]) {
      const wait = start + at - Date.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      const sent = Date.now()
      const burst = await Promise.all(Array.from({ length: 6 }, () => Effect.runPromise(limiter.consume(policy, "k"))))
      const received = Date.now()
      for (const decision of burst) if (decision.allowed) allowed.push({ sent, received })
    }
    let worst = 0
    for (const a of allowed) {
      worst = Math.max(worst, allowed.filter((b) => b.sent >= a.sent && b.received < a.sent + 1_000).length)
    }
    expect(worst).toBeLessThanOrEqual(5)
    expect(allowed.length).toBeGreaterThanOrEqual(10) // it does let traffic through as the window slides
  })

  it("reports remaining, reset and retry-after consistently", async () => {
    const policy = { name: "headers-test", limit: 3, windowMs: 10_000 }
    const decisions = []
    for (let i = 0; i < 4; i++) decisions.push(await Effect.runPromise(limiter.consume(policy, "k")))
    expect(decisions.map((d) => d.remaining)).toEqual([2, 1, 0, 0])
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false])
    const denied = decisions[3]!
    expect(denied.retryAfterMs).toBeGreaterThan(9_000)
    expect(denied.retryAfterMs).toBeLessThanOrEqual(10_000)
    expect(decisions[0]!.resetMs).toBeLessThanOrEqual(10_000)
  })
})
