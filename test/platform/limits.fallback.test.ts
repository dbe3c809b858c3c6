import { Effect, Logger, LogLevel, Metric } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { makeLocalRateLimiter } from "../../src/services/platform/localRateLimiter.js"
import { rateLimitStoreFailures } from "../../src/services/platform/RateLimiter.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"
import { call, bearer, freshEmail } from "../support/api.js"
import { PrivateRedis } from "../support/redisServer.js"

const PASSWORD = "Correct-Horse-42"

const failures = (decision: string, policy: string) =>
  Effect.runPromise(Metric.value(Metric.tagged(Metric.tagged(rateLimitStoreFailures, "decision", decision), "policy", policy))).then((s) => s.count)

describe("limits when Redis is unreachable", () => {
  let redis: PrivateRedis
  let app: InProcessApp
  let token: string
  let account: string
  beforeAll(async () => {
    redis = await PrivateRedis.start()
    app = await startApp(testEnv({
      REDIS_PORT: String(redis.port),
      RATE_LIMIT_REGISTER: "3 per 1 hour",
      RATE_LIMIT_LOGIN: "100 per 1 minute",
      RATE_LIMIT_GENERAL: "5 per 1 minute",
      LOGIN_MAX_FAILURES_PER_EMAIL: "5"
    }))
    account = freshEmail("fallback")
    const registered = await call(app, "POST", "/api/auth/register", { email: account, password: PASSWORD })
    expect(registered.status).toBe(201)
    token = registered.body["data"].token
    await redis.stop()
  })
  afterAll(async () => {
    await app?.close()
    await redis?.stop()
  })

  it("register (grants credits) fails closed: 8 registrations from one address are all 503, and counted", async () => {
    const before = await failures("closed", "register")
    const statuses = []
    for (let i = 0; i < 8; i++) {
      const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("fallback"), password: PASSWORD })
      statuses.push(r.status)
      expect(r.body).toMatchObject({ success: false, code: "SERVICE_UNAVAILABLE" })
    }
    expect(statuses).toEqual(Array(8).fill(503))
    expect(await failures("closed", "register")).toBe(before + 8)
  })

  it("the login lockout counts in this process: 12 wrong logins, then the right password is ACCOUNT_LOCKED", async () => {
    const before = await failures("local", "login-lockout")
    const statuses = []
    for (let i = 0; i < 12; i++) statuses.push((await call(app, "POST", "/api/auth/login", { email: account, password: `Wrong-Password-${i}` })).status)
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401])
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true)
    const right = await call(app, "POST", "/api/auth/login", { email: account, password: PASSWORD })
    expect(right.status).toBe(429)
    expect(right.body).toMatchObject({ success: false, code: "ACCOUNT_LOCKED" })
    expect(Number(right.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    expect(await failures("local", "login-lockout")).toBeGreaterThanOrEqual(before + 13)
    expect(app.logLines().some((line) => line.includes("login lockout store unavailable"))).toBe(true)
  })

  it("a cheap route over its limit answers 429 from the in-process limiter, with the usual headers, counted and logged", async () => {
    const before = await failures("local", "general")
    const results = []
    for (let i = 0; i < 7; i++) results.push(await call(app, "GET", "/api/auth/profile", undefined, bearer(token)))
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429])
    expect(results[0]!.headers.get("ratelimit-limit")).toBe("5")
    expect(results[4]!.headers.get("ratelimit-remaining")).toBe("0")
    expect(results[5]!.body).toMatchObject({ success: false, code: "RATE_LIMITED" })
    expect(Number(results[5]!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    expect(await failures("local", "general")).toBe(before + 7)
    expect(app.logLines().some((line) => line.includes("rate limiter unavailable; limiting in this process"))).toBe(true)
  })

  it("when Redis comes back, Redis decides again", async () => {
    await redis.start()
    await waitUntil(async () => (await fetch(app.url("/health/readiness"))).status === 200, 15_000)
    const before = await failures("closed", "register")
    const email = freshEmail("fallback")
    const r = await call(app, "POST", "/api/auth/register", { email, password: PASSWORD })
    expect(r.status).toBe(201)
    expect(await call(app, "POST", "/api/auth/login", { email, password: "Wrong-Password-1" })).toMatchObject({ status: 401 })
    expect(await failures("closed", "register")).toBe(before)
    const client = new Redis({ host: "127.0.0.1", port: redis.port, lazyConnect: true })
    await client.connect()
    try {
      expect(await client.get(`${inject("redisKeyPrefix")}login:fail:email:${email}`)).toBe("1")
      expect(await client.zcard(`${inject("redisKeyPrefix")}rl:register:127.0.0.1`)).toBe(1)
    } finally {
      client.disconnect()
    }
  }, 30_000)
})

describe("in-process limiter", () => {
  it("applies the same sliding-window policy and stays bounded in keys", async () => {
    const limiter = makeLocalRateLimiter(100)
    const policy = { name: "unit", limit: 3, windowMs: 60_000 }
    const decisions = []
    for (let i = 0; i < 4; i++) decisions.push(await Effect.runPromise(limiter.consume(policy, "k")))
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([[true, 2], [true, 1], [true, 0], [false, 0]])
    expect(decisions[3]!.retryAfterMs).toBeGreaterThan(59_000)
    for (let i = 0; i < 1_000; i++) await Effect.runPromise(limiter.consume(policy, `spray-${i}`))
    expect(limiter.size()).toBeLessThanOrEqual(100)
    // Recently used keys survive the eviction of older ones.
    expect((await Effect.runPromise(limiter.consume(policy, "spray-999"))).remaining).toBe(1)
  })

  it("drops expired windows, so a key is allowed again after its window", async () => {
    const limiter = makeLocalRateLimiter(10)
    const policy = { name: "short", limit: 1, windowMs: 100 }
    expect((await Effect.runPromise(limiter.consume(policy, "k"))).allowed).toBe(true)
    expect((await Effect.runPromise(limiter.consume(policy, "k"))).allowed).toBe(false)
    await new Promise((r) => setTimeout(r, 150))
    expect((await Effect.runPromise(limiter.consume(policy, "k"))).allowed).toBe(true)
  })
})

describe("each policy's mode when the store cannot answer", () => {
  it("policies that grant credits or start paid work fail closed; the rest are limited in this process", async () => {
    const { Layer } = await import("effect")
    const { HttpServerRequest } = await import("@effect/platform")
    const { RateLimitGuard } = await import("../../src/http/platform/RateLimitGuard.js")
    const { RateLimiter } = await import("../../src/services/platform/RateLimiter.js")
    const { RedisError } = await import("../../src/services/platform/Redis.js")
    const { appConfigFrom } = await import("../../src/layers/platform/AppConfigLive.js")
    const { AppConfig } = await import("../../src/services/platform/AppConfig.js")
    const Broken = Layer.succeed(RateLimiter, RateLimiter.of({ consume: () => Effect.fail(new RedisError({ op: "rate-limit", cause: "down" })) }))
    const layer = RateLimitGuard.Default.pipe(Layer.provide(Broken), Layer.provide(Layer.effect(AppConfig, appConfigFrom({ LOG_LEVEL: "silent" }))))
    const request = HttpServerRequest.fromWeb(new Request("http://localhost/x"))
    const outcomes = await Effect.runPromise(Effect.gen(function*() {
      const guard = yield* RateLimitGuard
      const names = ["health", "login", "general", "projectCreate", "register", "ai", "preset", "upload", "payment"] as const
      const result: Record<string, string> = {}
      for (const name of names) {
        const outcome = yield* Effect.either(guard.enforce(name, "policy-table"))
        result[name] = outcome._tag === "Left" ? outcome.left._tag : "allowed"
      }
      return result
    }).pipe(Effect.provide(layer), Effect.provideService(HttpServerRequest.HttpServerRequest, request), Logger.withMinimumLogLevel(LogLevel.None)))
    expect(outcomes).toEqual({
      health: "allowed",
      login: "allowed",
      general: "allowed",
      projectCreate: "allowed",
      register: "ServiceUnavailable",
      ai: "ServiceUnavailable",
      preset: "ServiceUnavailable",
      upload: "ServiceUnavailable",
      payment: "ServiceUnavailable"
    })
  })
})
