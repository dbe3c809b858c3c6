import { createHash } from "node:crypto"
import pg from "pg"
import { SignJWT } from "jose"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"
import { call, bearer, freshEmail } from "../support/api.js"

const JWT_SECRET = "t3st-Xq9mZ2Lp4Wn7Rt8Ys1Kd3Vb6Hc0Fg5Ej"
const PASSWORD = "Correct-Horse-42"


describe("accounts", () => {
  let app: InProcessApp
  const db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
  beforeAll(async () => {
    app = await startApp(testEnv({
      JWT_SECRET,
      LOGIN_MAX_FAILURES_PER_EMAIL: "3",
      LOGIN_LOCKOUT_WINDOW: "2 seconds",
      RATE_LIMIT_LOGIN: "1000 per 1 minute",
      RATE_LIMIT_REGISTER: "1000 per 1 minute"
    }))
  })
  afterAll(async () => {
    await app?.close()
    await db.end()
  })

  it("registers with a normalised email, 100 welcome credits through the ledger, and the web app's shape", async () => {
    const raw = `  ${freshEmail("User", "Example.COM")} `
    const r = await call(app, "POST", "/api/auth/register", { email: raw, password: PASSWORD, name: "Budi" })
    expect(r.status).toBe(201)
    expect(r.body).toMatchObject({ success: true, data: { user: { email: raw.trim().toLowerCase(), name: "Budi", creditBalance: 100 } } })
    expect(typeof r.body["data"].token).toBe("string")
    const ledger = await db.query("SELECT delta, kind FROM credit_ledger WHERE user_id = $1", [r.body["data"].user.id])
    expect(ledger.rows).toEqual([{ delta: "100", kind: "bonus" }])
    const stored = await db.query("SELECT password_hash FROM users WHERE id = $1", [r.body["data"].user.id])
    expect(stored.rows[0].password_hash).toMatch(/^scrypt\$/)
    // The same address in another case is the same account.
    const again = await call(app, "POST", "/api/auth/register", { email: raw.toUpperCase(), password: PASSWORD })
    expect(again.status).toBe(409)
    expect(again.body).toMatchObject({ success: false, code: "CONFLICT" })
  })

  it("states the password rule in the error", async () => {
    for (const password of ["short1A!", "alllowercaseletters", "ALLUPPER12345678"]) {
      const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("User", "Example.COM"), password })
      expect(r.status).toBe(400)
      expect(r.body).toMatchObject({ success: false, code: "VALIDATION_ERROR" })
      expect(r.body["error"]).toMatch(/Password must/)
    }
  })

  it("answers an unknown email and a wrong password the same way, in comparable time", async () => {
    // One existing account per wrong attempt, so the lockout (3 failures) never kicks in here.
    const emails = Array.from({ length: 5 }, () => freshEmail("User", "Example.COM"))
    for (const email of emails) await call(app, "POST", "/api/auth/register", { email, password: PASSWORD })
    const timed = async (body: unknown) => {
      const start = performance.now()
      const r = await call(app, "POST", "/api/auth/login", body)
      return { r, ms: performance.now() - start }
    }
    const unknowns = []
    const wrongs = []
    for (let i = 0; i < 5; i++) {
      unknowns.push(await timed({ email: freshEmail("User", "Example.COM"), password: PASSWORD }))
      wrongs.push(await timed({ email: emails[i]!, password: `Wrong-Password-${i}` }))
    }
    const strip = (b: Record<string, unknown>) => ({ ...b, requestId: undefined })
    for (const { r } of [...unknowns, ...wrongs]) {
      expect(r.status).toBe(401)
      expect(strip(r.body)).toEqual(strip(wrongs[0]!.r.body))
    }
    // Both paths run one scrypt derivation: the unknown email is not a fast path.
    const median = (xs: Array<{ ms: number }>) => xs.map((x) => x.ms).sort((a, b) => a - b)[2]!
    expect(median(unknowns)).toBeGreaterThan(median(wrongs) * 0.5)
    expect(median(unknowns)).toBeLessThan(median(wrongs) * 2)
  })

  it("locks an email after repeated failures, answers 429 with Retry-After, and unlocks when the window ends", async () => {
    const email = freshEmail("User", "Example.COM")
    await call(app, "POST", "/api/auth/register", { email, password: PASSWORD })
    for (let i = 0; i < 3; i++) expect((await call(app, "POST", "/api/auth/login", { email, password: "Wrong-Password-1" })).status).toBe(401)
    const locked = await call(app, "POST", "/api/auth/login", { email, password: PASSWORD })
    expect(locked.status).toBe(429)
    expect(locked.body).toMatchObject({ code: "ACCOUNT_LOCKED" })
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    await new Promise((r) => setTimeout(r, 2_200))
    expect((await call(app, "POST", "/api/auth/login", { email, password: PASSWORD })).status).toBe(200)
  })

  it("tokens: profile with one, 401 without, with a forged or alg:none token; logout revokes at once", async () => {
    const reg = await call(app, "POST", "/api/auth/register", { email: freshEmail("User", "Example.COM"), password: PASSWORD })
    const token = reg.body["data"].token as string
    const profile = await call(app, "GET", "/api/auth/profile", undefined, bearer(token))
    expect(profile.status).toBe(200)
    expect(profile.body).toMatchObject({ id: reg.body["data"].user.id, role: "user", creditBalance: 100 })
    const missing = await call(app, "GET", "/api/auth/profile")
    expect(missing.status).toBe(401)
    expect(missing.body).toMatchObject({ success: false, code: "UNAUTHORIZED" })
    expect(missing.headers.get("www-authenticate")).toBe("Bearer")
    const [header, payload] = token.split(".")
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`
    expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(none))).status).toBe(401)
    const forged = await new SignJWT({ sid: "x" }).setProtectedHeader({ alg: "HS256" }).setSubject(reg.body["data"].user.id).setIssuer("lumiku").setExpirationTime("1h").sign(new TextEncoder().encode("another-secret-of-sufficient-length!!"))
    expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(forged))).status).toBe(401)
    expect((await call(app, "GET", "/api/auth/profile", undefined, { authorization: `Token ${token}` })).status).toBe(401)
    expect(header).toBeDefined()
    expect((await call(app, "POST", "/api/auth/logout", undefined, bearer(token))).status).toBe(200)
    expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(token))).status).toBe(401)
  })

  it("a password change needs the current password, revokes every session and returns a new token", async () => {
    const email = freshEmail("User", "Example.COM")
    const first = (await call(app, "POST", "/api/auth/register", { email, password: PASSWORD })).body["data"].token as string
    const second = (await call(app, "POST", "/api/auth/login", { email, password: PASSWORD })).body["data"].token as string
    const denied = await call(app, "PUT", "/api/auth/profile", { newPassword: "Another-Secret-77" }, bearer(first))
    expect(denied.status).toBe(401)
    const changed = await call(app, "PUT", "/api/auth/profile", { currentPassword: PASSWORD, newPassword: "Another-Secret-77", name: "Sari" }, bearer(first))
    expect(changed.status).toBe(200)
    expect(changed.body).toMatchObject({ success: true, user: { name: "Sari" }, data: { user: { name: "Sari" } } })
    expect(changed.body["token"]).toBe(changed.body["data"].token)
    for (const old of [first, second]) expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(old))).status).toBe(401)
    expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(changed.body["token"]))).status).toBe(200)
    expect((await call(app, "POST", "/api/auth/login", { email, password: PASSWORD })).status).toBe(401)
    expect((await call(app, "POST", "/api/auth/login", { email, password: "Another-Secret-77" })).status).toBe(200)
  })

  it("refresh tokens rotate, and an old one no longer works", async () => {
    const session = (await call(app, "POST", "/api/auth/register", { email: freshEmail("User", "Example.COM"), password: PASSWORD })).body["data"]
    const rotated = await call(app, "POST", "/api/auth/refresh", { refreshToken: session.refreshToken })
    expect(rotated.status).toBe(200)
    expect(rotated.body["data"].refreshToken).not.toBe(session.refreshToken)
    expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(rotated.body["data"].token))).status).toBe(200)
    expect((await call(app, "POST", "/api/auth/refresh", { refreshToken: session.refreshToken })).status).toBe(401)
  })

  it("stores a refresh token only as its SHA-256 digest in base64url, the form existing sessions hold", async () => {
    const session = (await call(app, "POST", "/api/auth/register", { email: freshEmail("User", "Example.COM"), password: PASSWORD })).body["data"]
    const digest = (token: string) => createHash("sha256").update(token, "utf8").digest("base64url")
    const stored = await db.query("SELECT refresh_token_hash FROM sessions WHERE user_id = $1", [session.user.id])
    expect(stored.rows).toEqual([{ refresh_token_hash: digest(session.refreshToken) }])
    const rotated = (await call(app, "POST", "/api/auth/refresh", { refreshToken: session.refreshToken })).body["data"]
    const after = await db.query(
      "SELECT s.refresh_token_hash, r.token_hash AS retired FROM sessions s JOIN retired_refresh_tokens r ON r.session_id = s.id WHERE s.user_id = $1",
      [session.user.id]
    )
    expect(after.rows).toEqual([{ refresh_token_hash: digest(rotated.refreshToken), retired: digest(session.refreshToken) }])
  })

  it("credits: balance and a bare-array history with cursor paging in a header", async () => {
    const session = (await call(app, "POST", "/api/auth/register", { email: freshEmail("User", "Example.COM"), password: PASSWORD })).body["data"]
    const userId = session.user.id as string
    for (let i = 1; i <= 4; i++) {
      await db.query(
        "WITH u AS (UPDATE users SET balance = balance + $2 WHERE id = $1 RETURNING balance) INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, idempotency_key) SELECT $1, $2, balance, 'purchase', 'Top-up', $3 FROM u",
        [userId, i, `test-topup:${userId}:${i}`]
      )
    }
    const balance = await call(app, "GET", "/api/credits/balance", undefined, bearer(session.token))
    expect(balance.body).toEqual({ success: true, data: { balance: 110 } })
    expect(balance.headers.get("ratelimit-limit")).toBe("100")
    const page1 = await call(app, "GET", "/api/credits/history?limit=3", undefined, bearer(session.token))
    expect(Array.isArray(page1.body)).toBe(true)
    expect((page1.body as unknown as Array<Record<string, unknown>>).map((e) => e["amount"])).toEqual([4, 3, 2])
    expect(page1.body[0]).toMatchObject({ type: "purchase", description: "Top-up", balance: 110 })
    const cursor = page1.headers.get("x-next-cursor")
    expect(cursor).toMatch(/^\d+$/)
    const page2 = await call(app, "GET", `/api/credits/history?limit=3&cursor=${cursor}`, undefined, bearer(session.token))
    expect((page2.body as unknown as Array<Record<string, unknown>>).map((e) => e["amount"])).toEqual([1, 100])
    expect(page2.headers.get("x-next-cursor")).toBeNull()
    expect((await call(app, "GET", "/api/credits/history?limit=0", undefined, bearer(session.token))).status).toBe(400)
    expect((await call(app, "GET", "/api/credits/balance")).status).toBe(401)
  })

  it("an admin user's own token opens the admin API; a user's does not", async () => {
    const user = (await call(app, "POST", "/api/auth/register", { email: freshEmail("User", "Example.COM"), password: PASSWORD })).body["data"]
    expect((await call(app, "GET", "/api/admin/queues", undefined, bearer(user.token))).status).toBe(401)
    await db.query("UPDATE users SET role = 'admin' WHERE id = $1", [user.user.id])
    expect((await call(app, "GET", "/api/admin/queues", undefined, bearer(user.token))).status).toBe(200)
  })
})

describe("rate limits on the auth routes", () => {
  let a: InProcessApp
  let b: InProcessApp
  beforeAll(async () => {
    // Two instances sharing one Redis prefix: one limit between them.
    const env = testEnv({ JWT_SECRET, RATE_LIMIT_LOGIN: "10 per 1 minute", RATE_LIMIT_REGISTER: "3 per 1 hour", REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}rl:` })
    a = await startApp(env)
    b = await startApp(env)
  })
  afterAll(async () => {
    await a?.close()
    await b?.close()
  })

  it("15 parallel logins against 10/min across two instances: exactly 10 pass, 5 get 429 with Retry-After 1-60; a spoofed X-Forwarded-For changes nothing", async () => {
    const results = await Promise.all(Array.from({ length: 15 }, (_, i) =>
      call(i % 2 === 0 ? a : b, "POST", "/api/auth/login", { email: `nobody${i}@example.com`, password: PASSWORD }, { "x-forwarded-for": `198.51.100.${i}` })))
    const limited = results.filter((r) => r.status === 429)
    expect(results.filter((r) => r.status === 401)).toHaveLength(10)
    expect(limited).toHaveLength(5)
    for (const r of limited) {
      expect(r.body).toMatchObject({ success: false, code: "RATE_LIMITED" })
      const retryAfter = Number(r.headers.get("retry-after"))
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(60)
      expect(r.headers.get("ratelimit-remaining")).toBe("0")
    }
    const passed = results.filter((r) => r.status === 401)
    expect(passed.every((r) => r.headers.get("x-ratelimit-limit") === "10")).toBe(true)
  })

  it("register is limited per address", async () => {
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await call(a, "POST", "/api/auth/register", { email: freshEmail("User", "Example.COM"), password: PASSWORD })).status)
    expect(statuses).toEqual([201, 201, 201, 429])
  })
})

describe("rate-limit guard when Redis cannot answer", () => {
  it("cheap routes fall back to the in-process limiter, expensive ones fail closed, and every failed check is counted", async () => {
    const { Effect, Layer, Metric } = await import("effect")
    const { RateLimitGuard, rateLimitStoreFailures } = await import("../../src/http/platform/RateLimitGuard.js")
    const { RateLimiter } = await import("../../src/services/platform/RateLimiter.js")
    const { RedisError } = await import("../../src/services/platform/Redis.js")
    const { appConfigFrom } = await import("../../src/layers/platform/AppConfigLive.js")
    const { AppConfig } = await import("../../src/services/platform/AppConfig.js")
    const { HttpServerRequest } = await import("@effect/platform")
    const Broken = Layer.succeed(RateLimiter, RateLimiter.of({ consume: () => Effect.fail(new RedisError({ op: "rate-limit", cause: "down" })) }))
    const layer = RateLimitGuard.Default.pipe(Layer.provide(Broken), Layer.provide(Layer.effect(AppConfig, appConfigFrom({ LOG_LEVEL: "silent" }))))
    const request = HttpServerRequest.fromWeb(new Request("http://localhost/x"))
    const outcome = await Effect.runPromise(Effect.gen(function*() {
      const guard = yield* RateLimitGuard
      const open = yield* Effect.either(guard.enforce("general", "user:1", "local"))
      const closed = yield* Effect.either(guard.enforce("ai", "user:1", "closed"))
      const count = (decision: string, policy: string) =>
        Metric.value(Metric.tagged(Metric.tagged(rateLimitStoreFailures, "decision", decision), "policy", policy)).pipe(Effect.map((state) => state.count))
      return { open: open._tag, closed: closed._tag === "Left" ? closed.left._tag : "Right", countedOpen: yield* count("local", "general"), countedClosed: yield* count("closed", "ai") }
    }).pipe(Effect.provide(layer), Effect.provideService(HttpServerRequest.HttpServerRequest, request)))
    expect(outcome.open).toBe("Right")
    expect(outcome.closed).toBe("ServiceUnavailable")
    expect(outcome.countedOpen).toBeGreaterThanOrEqual(1)
    expect(outcome.countedClosed).toBeGreaterThanOrEqual(1)
  })
})
