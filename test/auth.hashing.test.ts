import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { type InProcessApp, startApp } from "./support/inProcessApp.js"
import { testEnv } from "./support/env.js"

const PASSWORD = "Correct-Horse-42"

const post = (app: InProcessApp, path: string, body: unknown) =>
  fetch(app.url(path), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
const timed = async (url: string) => {
  const start = performance.now()
  const response = await fetch(url)
  const body = (await response.json()) as Record<string, any>
  return { status: response.status, body, ms: performance.now() - start }
}

describe("password hashing does not starve the rest of the process", () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp(testEnv({
      REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}hashing:`,
      HEALTH_RATE_LIMIT_PER_MINUTE: "100000",
      RATE_LIMIT_LOGIN: "10000 per 1 minute",
      RATE_LIMIT_REGISTER: "10000 per 1 minute",
      LOGIN_MAX_FAILURES_PER_EMAIL: "1000",
      LOGIN_MAX_FAILURES_PER_ADDRESS: "10000"
    }))
  })
  afterAll(async () => app?.close())

  it("while 50 logins run, the detailed report stays 200 with storage up, liveness stays fast and readiness 200", async () => {
    const emails = Array.from({ length: 5 }, (_, i) => `hashing.${Date.now()}.${i}@example.com`)
    for (const email of emails) expect((await post(app, "/api/auth/register", { email, password: PASSWORD })).status).toBe(201)
    let running = true
    const logins = Promise.all(Array.from({ length: 50 }, (_, i) =>
      post(app, "/api/auth/login", { email: emails[i % emails.length], password: PASSWORD }).then((r) => r.status)))
      .finally(() => {
        running = false
      })
    const detailed: Array<Awaited<ReturnType<typeof timed>>> = []
    const liveness: Array<Awaited<ReturnType<typeof timed>>> = []
    const readiness: Array<Awaited<ReturnType<typeof timed>>> = []
    const poll = async () => {
      // Give the logins a moment to fill the pool first.
      await new Promise((r) => setTimeout(r, 50))
      while (running) {
        const [d, l, r] = await Promise.all([timed(app.url("/health")), timed(app.url("/health/liveness")), timed(app.url("/health/readiness"))])
        detailed.push(d)
        liveness.push(l)
        readiness.push(r)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    const [statuses] = await Promise.all([logins, poll()])
    expect(statuses.every((s) => s === 200)).toBe(true)
    expect(detailed.length).toBeGreaterThanOrEqual(3)
    for (const d of detailed) {
      expect(d.body["checks"]?.storage, JSON.stringify(d.body["checks"])).toMatchObject({ status: "up" })
      expect(d.status, JSON.stringify(d.body["checks"])).toBe(200)
    }
    expect(Math.max(...liveness.map((l) => l.ms))).toBeLessThan(200)
    expect(readiness.every((r) => r.status === 200)).toBe(true)
  }, 60_000)
})
