import { randomUUID } from "node:crypto"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"
import { PrivateRedis } from "../support/redisServer.js"
import { startHangingServer, TcpProxy } from "../support/tcpProxy.js"

const status = (url: string) => fetch(url).then((r) => r.status)
const json = (url: string, init?: RequestInit) =>
  fetch(url, init).then(async (r) => ({ status: r.status, headers: r.headers, body: (await r.json()) as Record<string, any> }))

const ADMIN_TOKEN = "health-admin-token-0123456789abcdefghijklmnop"

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

  it("the detailed report answers within a probe timeout with 503 while Postgres hangs (its check gives up at 250 ms)", async () => {
    pgProxy.setMode("hang")
    try {
      const start = performance.now()
      const r = await json(app.url("/health"))
      const elapsed = performance.now() - start
      // The check gives up at its 250 ms timeout; the whole answer stays well inside a Kubernetes probe's
      // 1 s timeoutSeconds. (A 300 ms bound left 50 ms for HTTP and scheduling and failed on a slow VM.)
      expect(elapsed).toBeLessThan(1_000)
      expect(r.status).toBe(503)
      expect(r.body["checks"].database).toMatchObject({ status: "down", error: "timeout" })
      expect(r.body["checks"].database.latencyMs).toBeLessThan(500)
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
    app = await startApp(testEnv({ REDIS_PORT: String(hanging.port), HEALTH_RATE_LIMIT_PER_MINUTE: "3", ADMIN_TOKEN }))
  })
  afterAll(async () => {
    await app?.close()
    await hanging?.close()
  })

  it("answers within 300 ms while Redis accepts connections and never answers", async () => {
    for (let i = 0; i < 3; i++) {
      const start = performance.now()
      const r = await json(app.url("/api/health"), { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
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
    // The checks get time enough for 8 concurrent reports on a busy 2-core machine: this is about the limit, not the timeouts.
    app = await startApp(testEnv({
      // its own Redis prefix: the per-address window (127.0.0.1) is otherwise shared with every file of the run
      REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}healthlimit:`,
      HEALTH_RATE_LIMIT_PER_MINUTE: "5",
      HEALTH_DETAILED_TIMEOUT: "2 seconds"
    }))
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

describe("detailed report visibility", () => {
  let app: InProcessApp
  const db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 1 })
  const PRIVATE_KEYS = ["version", "environment", "memory", "phase", "uptimeSeconds", "responseTimeMs"]

  beforeAll(async () => {
    app = await startApp(testEnv({ ADMIN_TOKEN, HEALTH_RATE_LIMIT_PER_MINUTE: "1000", RATE_LIMIT_REGISTER: "1000 per 1 minute" }))
  })
  afterAll(async () => {
    await app?.close()
    await db.end()
  })

  const expectPublic = (r: { status: number; headers: Headers; body: Record<string, any> }) => {
    expect(r.status).toBe(200)
    expect(Object.keys(r.body).sort()).toEqual(["checks", "status", "timestamp"])
    expect(r.body["status"]).toBe("healthy")
    expect(Object.keys(r.body["checks"]).sort()).toEqual(["database", "ffmpeg", "queues", "redis", "storage"])
    for (const check of Object.values(r.body["checks"]) as Array<Record<string, unknown>>) {
      expect(Object.keys(check).sort()).toEqual(["latencyMs", "status"])
      expect(check["status"]).toBe("up")
      expect(typeof check["latencyMs"]).toBe("number")
    }
    const text = JSON.stringify(r.body)
    for (const key of PRIVATE_KEYS) expect(text).not.toContain(`"${key}"`)
    expect(text).not.toContain("ffmpeg version")
    expect(text).not.toMatch(/\/(usr|bin|node_modules)\b/)
    expect(r.headers.get("vary")).toMatch(/authorization/i)
    expect(r.headers.get("cache-control")).toBe("no-store")
  }

  it("without a credential, or with an invalid one, both routes answer only status, checks and time (never 401)", async () => {
    for (const path of ["/health", "/api/health"]) {
      expectPublic(await json(app.url(path)))
      expectPublic(await json(app.url(path), { headers: { authorization: "Bearer not-the-admin-token" } }))
      expectPublic(await json(app.url(path), { headers: { authorization: `Basic ${ADMIN_TOKEN}` } }))
      expectPublic(await json(app.url(path), { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } }))
    }
  })

  it("a user's session token gets the public view; an admin user's session token and ADMIN_TOKEN get the full report", async () => {
    const email = `health-${randomUUID()}@test.local`
    const reg = await json(app.url("/api/auth/register"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password: "Correct-Horse-9-battery" })
    })
    expect(reg.status).toBe(201)
    const userToken = reg.body["data"].token as string
    expectPublic(await json(app.url("/health"), { headers: { authorization: `Bearer ${userToken}` } }))
    await db.query("UPDATE users SET role = 'admin' WHERE email = $1", [email])
    for (const token of [userToken, ADMIN_TOKEN]) {
      const full = await json(app.url("/api/health"), { headers: { authorization: `Bearer ${token}` } })
      expect(full.status).toBe(200)
      for (const key of PRIVATE_KEYS) expect(full.body).toHaveProperty(key)
      expect(full.body["environment"]).toBe("test")
      expect(full.body["memory"]).toHaveProperty("rssBytes")
      expect(full.body["checks"].ffmpeg).toHaveProperty("version")
    }
  })
})
