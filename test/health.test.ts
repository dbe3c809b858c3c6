import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type InProcessApp, startApp, waitUntil } from "./support/inProcessApp.js"
import { testEnv } from "./support/env.js"
import { PrivateRedis } from "./support/redisServer.js"
import { startHangingServer, TcpProxy } from "./support/tcpProxy.js"

const status = (url: string) => fetch(url).then((r) => r.status)
const json = (url: string, init?: RequestInit) =>
  fetch(url, init).then(async (r) => ({ status: r.status, headers: r.headers, body: (await r.json()) as Record<string, any> }))

describe("health probes against dependencies that fail and come back", () => {
  let redis: PrivateRedis
  let pgProxy: TcpProxy
  let app: InProcessApp

  beforeAll(async () => {
    redis = await PrivateRedis.start()
    pgProxy = await TcpProxy.start(5432)
    const dbUrl = new URL(testEnv().DATABASE_URL!)
    dbUrl.port = String(pgProxy.port)
    app = await startApp(testEnv({
      REDIS_PORT: String(redis.port),
      DATABASE_URL: dbUrl.toString(),
      DB_CONNECT_TIMEOUT: "1000",
      READINESS_CACHE_TTL: "200"
    }))
  })
  afterAll(async () => {
    await app?.close()
    await redis?.stop()
    await pgProxy?.close()
  })

  it("liveness and readiness answer 200 when everything is up", async () => {
    expect(await json(app.url("/health/liveness"))).toMatchObject({ status: 200, body: { status: "ok" } })
    const ready = await json(app.url("/health/readiness"))
    expect(ready.status).toBe(200)
    expect(ready.body).toMatchObject({ status: "ready", checks: { database: { status: "up" }, redis: { status: "up" } } })
  })

  it("readiness turns 503 within 2 s when Redis stops, liveness stays 200, and 200 again within 5 s after it returns", async () => {
    await redis.stop()
    let livenessFailures = 0
    const tookMs = await waitUntil(async () => {
      if ((await status(app.url("/health/liveness"))) !== 200) livenessFailures++
      const r = await json(app.url("/health/readiness"))
      return r.status === 503 && r.body["checks"]?.redis?.status === "down" && r.body["status"] === "not_ready"
    }, 2_000)
    expect(tookMs).toBeLessThan(2_000)
    expect(await status(app.url("/health/liveness"))).toBe(200)
    await redis.start()
    const back = await waitUntil(async () => (await status(app.url("/health/readiness"))) === 200, 5_000)
    expect(back).toBeLessThan(5_000)
    expect(livenessFailures).toBe(0)
  })

  it("readiness turns 503 within 2 s when Postgres is unreachable and 200 within 5 s after it returns", async () => {
    pgProxy.setMode("refuse")
    const tookMs = await waitUntil(async () => {
      const r = await json(app.url("/health/readiness"))
      return r.status === 503 && r.body["checks"]?.database?.status === "down"
    }, 2_000)
    expect(tookMs).toBeLessThan(2_000)
    expect(await status(app.url("/health/liveness"))).toBe(200)
    pgProxy.setMode("pass")
    expect(await waitUntil(async () => (await status(app.url("/health/readiness"))) === 200, 5_000)).toBeLessThan(5_000)
  })

  it("the detailed report answers within 300 ms with 503 while Postgres hangs", async () => {
    pgProxy.setMode("hang")
    try {
      const start = performance.now()
      const r = await json(app.url("/health"))
      const elapsed = performance.now() - start
      expect(elapsed).toBeLessThan(300)
      expect(r.status).toBe(503)
      expect(r.body["checks"].database).toMatchObject({ status: "down", error: "timeout" })
      expect(r.body["checks"].redis.status).toBe("up")
    } finally {
      pgProxy.setMode("pass")
    }
  })
})

describe("detailed health report", () => {
  let app: InProcessApp
  let hanging: { port: number; close: () => Promise<void> }
  beforeAll(async () => {
    hanging = await startHangingServer()
    app = await startApp(testEnv({ REDIS_PORT: String(hanging.port), HEALTH_RATE_LIMIT_PER_MINUTE: "3" }))
  })
  afterAll(async () => {
    await app?.close()
    await hanging?.close()
  })

  it("answers within 300 ms while Redis accepts connections and never answers", async () => {
    for (let i = 0; i < 3; i++) {
      const start = performance.now()
      const r = await json(app.url("/api/health"))
      expect(performance.now() - start).toBeLessThan(300)
      expect(r.status).toBe(503)
      expect(r.body).toMatchObject({
        status: "unhealthy",
        checks: { redis: { status: "down" }, database: { status: "up" }, storage: { status: "up" }, ffmpeg: { status: "up" } }
      })
      expect(typeof r.body["version"]).toBe("string")
      expect(r.body["memory"]).toHaveProperty("rssBytes")
      expect(r.body["memory"]).toHaveProperty("limitBytes")
      expect(r.body["memory"]).not.toHaveProperty("heapTotal")
    }
  })
})

describe("detailed report rate limit", () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp(testEnv({ HEALTH_RATE_LIMIT_PER_MINUTE: "5" }))
  })
  afterAll(async () => app?.close())

  it("limits per client address, ignores a spoofed X-Forwarded-For, and never limits liveness", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        json(app.url(i % 2 === 0 ? "/health" : "/api/health"), { headers: { "x-forwarded-for": `203.0.113.${i}` } }))
    )
    const ok = results.filter((r) => r.status === 200)
    const limited = results.filter((r) => r.status === 429)
    expect(ok).toHaveLength(5)
    expect(limited).toHaveLength(3)
    for (const r of limited) {
      expect(r.body).toMatchObject({ success: false, code: "RATE_LIMITED" })
      expect(r.body["error"]).toBe(r.body["message"])
      expect(typeof r.body["requestId"]).toBe("string")
      const retryAfter = Number(r.headers.get("retry-after"))
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(60)
    }
    expect(ok[0]!.headers.get("ratelimit-limit")).toBe("5")
    expect(ok[0]!.headers.get("x-ratelimit-limit")).toBe("5")
    const live = await Promise.all(Array.from({ length: 20 }, () => status(app.url("/health/liveness"))))
    expect(live.every((s) => s === 200)).toBe(true)
  })
})
