import pg from "pg"
import { Effect, Logger, LogLevel } from "effect"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"
import { call, bearer, freshEmail } from "../support/api.js"

const P1 = "Correct-Horse-42"
const P2 = "Another-Secret-77"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("account hardening", () => {
  let app: InProcessApp
  const db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
  beforeAll(async () => {
    app = await startApp(testEnv({
      // Its own counters: the failures here must not lock 127.0.0.1 for other test files of this run.
      REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}hardening:`,
      TRUSTED_PROXIES: "127.0.0.1/32",
      LOGIN_MAX_FAILURES_PER_EMAIL: "5",
      LOGIN_MAX_FAILURES_PER_ADDRESS: "1000",
      RATE_LIMIT_LOGIN: "10000 per 1 minute",
      RATE_LIMIT_REGISTER: "10000 per 1 minute",
      RATE_LIMIT_GENERAL: "10000 per 1 minute"
    }))
  })
  afterAll(async () => {
    await app?.close()
    await db.end()
  })
  const register = async (email = freshEmail("hard"), password = P1) => {
    const r = await call(app, "POST", "/api/auth/register", { email, password })
    expect(r.status).toBe(201)
    return r.body["data"] as { user: { id: string; email: string }; token: string; refreshToken: string }
  }
  const storedHash = async (id: string) => (await db.query("SELECT password_hash FROM users WHERE id = $1", [id])).rows[0].password_hash as string

  it("concurrent password change (P1->P2) and email change authorised with P1: the later one never undoes the first", async () => {
    // The reported race: the email change reads the row before the password change commits and
    // writes the old hash back after it. Delays span the window on either side of that commit.
    for (const delay of [30, 60, 90, 120, 150, 180, 210, 240]) {
      const email = freshEmail("hard")
      const first = await register(email)
      const second = (await call(app, "POST", "/api/auth/login", { email, password: P1 })).body["data"].token as string
      const newEmail = freshEmail("hard")
      const passwordChange = call(app, "PUT", "/api/auth/profile", { currentPassword: P1, newPassword: P2 }, bearer(first.token))
      await sleep(delay)
      const emailChange = call(app, "PUT", "/api/auth/profile", { currentPassword: P1, email: newEmail }, bearer(second))
      const [pw, em] = await Promise.all([passwordChange, emailChange])
      expect(pw.status, `delay ${delay}`).toBe(200)
      expect([200, 401, 409], `delay ${delay}`).toContain(em.status)
      const current = (await db.query("SELECT email FROM users WHERE id = $1", [first.user.id])).rows[0].email as string
      if (em.status === 200) expect(current).toBe(newEmail)
      else expect(current, `delay ${delay}`).toBe(email)
      expect((await call(app, "POST", "/api/auth/login", { email: current, password: P2 })).status, `delay ${delay}`).toBe(200)
      expect((await call(app, "POST", "/api/auth/login", { email: current, password: P1 })).status, `delay ${delay}`).toBe(401)
    }
  }, 60_000)

  it("writes only the fields a request changes: a name change next to a password change keeps both, or is refused", async () => {
    // Old behaviour: the password change wrote back the name it had read before the name change committed.
    for (let trial = 0; trial < 4; trial++) {
      const email = freshEmail("hard")
      const first = await register(email)
      const second = (await call(app, "POST", "/api/auth/login", { email, password: P1 })).body["data"].token as string
      const passwordChange = call(app, "PUT", "/api/auth/profile", { currentPassword: P1, newPassword: P2 }, bearer(first.token))
      await sleep(10 + trial * 10)
      const nameChange = await call(app, "PUT", "/api/auth/profile", { name: "Sari" }, bearer(second))
      expect((await passwordChange).status).toBe(200)
      expect([200, 401]).toContain(nameChange.status)
      const row = (await db.query("SELECT name FROM users WHERE id = $1", [first.user.id])).rows[0]
      expect(row.name).toBe(nameChange.status === 200 ? "Sari" : null)
      expect((await call(app, "POST", "/api/auth/login", { email, password: P2 })).status).toBe(200)
    }
  }, 30_000)

  it("40 concurrent wrong logins for one email from 40 addresses verify the password at most 5 times; the rest are ACCOUNT_LOCKED", async () => {
    const { user } = await register()
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      call(app, "POST", "/api/auth/login", { email: user.email, password: `Wrong-Password-${i}` }, { "x-forwarded-for": `198.51.100.${i + 1}` })))
    const unauthorized = results.filter((r) => r.status === 401)
    const locked = results.filter((r) => r.status === 429)
    expect(unauthorized.length + locked.length).toBe(40)
    expect(unauthorized.length).toBeLessThanOrEqual(5)
    for (const r of locked) {
      expect(r.body).toMatchObject({ success: false, code: "ACCOUNT_LOCKED" })
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    }
    // Locked means locked: the right password waits too.
    expect((await call(app, "POST", "/api/auth/login", { email: user.email, password: P1 }, { "x-forwarded-for": "198.51.100.200" })).status).toBe(429)
  })

  it("a correct login gives its reservation back: eight sequential good logins do not lock the account", async () => {
    const { user } = await register()
    for (let i = 0; i < 8; i++) expect((await call(app, "POST", "/api/auth/login", { email: user.email, password: P1 })).status).toBe(200)
  })

  it("the current-password check of PUT /profile counts against the login lockout: 30 wrong guesses, then the right one changes nothing", async () => {
    const session = await register()
    const hashBefore = await storedHash(session.user.id)
    const statuses: Array<number> = []
    for (let i = 0; i < 30; i++) {
      statuses.push((await call(app, "PUT", "/api/auth/profile", { currentPassword: `Wrong-Guess-${i}!`, newPassword: P2 }, bearer(session.token))).status)
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401])
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true)
    const right = await call(app, "PUT", "/api/auth/profile", { currentPassword: P1, newPassword: P2 }, bearer(session.token))
    expect(right.status).toBe(429)
    expect(right.body).toMatchObject({ success: false, code: "ACCOUNT_LOCKED" })
    expect(Number(right.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    expect(await storedHash(session.user.id)).toBe(hashBefore)
    // The same counters as login.
    expect((await call(app, "POST", "/api/auth/login", { email: session.user.email, password: P1 })).status).toBe(429)
  })

  it("a reused refresh token revokes its session: the rotated refresh token and the session's access tokens stop working", async () => {
    const session = await register()
    const rotated = await call(app, "POST", "/api/auth/refresh", { refreshToken: session.refreshToken })
    expect(rotated.status).toBe(200)
    const { token: t1, refreshToken: r1 } = rotated.body["data"]
    expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(t1))).status).toBe(200)
    const reuse = await call(app, "POST", "/api/auth/refresh", { refreshToken: session.refreshToken })
    expect(reuse.status).toBe(401)
    expect((await call(app, "POST", "/api/auth/refresh", { refreshToken: r1 })).status).toBe(401)
    expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(t1))).status).toBe(401)
    expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(session.token))).status).toBe(401)
    // Other sessions of the same account are untouched.
    expect((await call(app, "POST", "/api/auth/login", { email: session.user.email, password: P1 })).status).toBe(200)
  })

  it("concurrent double use of one refresh token: exactly one wins, the other counts as reuse and ends the session", async () => {
    for (let trial = 0; trial < 5; trial++) {
      const session = await register()
      const both = await Promise.all([0, 1].map(() => call(app, "POST", "/api/auth/refresh", { refreshToken: session.refreshToken })))
      const winners = both.filter((r) => r.status === 200)
      expect(winners).toHaveLength(1)
      expect(both.filter((r) => r.status === 401)).toHaveLength(1)
      const winner = winners[0]!.body["data"]
      expect((await call(app, "GET", "/api/auth/profile", undefined, bearer(winner.token))).status).toBe(401)
      expect((await call(app, "POST", "/api/auth/refresh", { refreshToken: winner.refreshToken })).status).toBe(401)
    }
  })

  it("emails are NFKC-normalised then lower-cased: é composed or decomposed, and fullwidth letters, are one account", async () => {
    const tag = freshEmail("t").split("@")[0]!.replace(/\W/g, "")
    const composed = `jos\u00e9.${tag}@example.com`
    const decomposed = `jose\u0301.${tag}@example.com`
    const first = await call(app, "POST", "/api/auth/register", { email: composed, password: P1 })
    expect(first.status).toBe(201)
    expect(first.body["data"].user.email).toBe(composed)
    const second = await call(app, "POST", "/api/auth/register", { email: decomposed, password: P1 })
    expect(second.status).toBe(409)
    expect((await call(app, "POST", "/api/auth/login", { email: ` JOSE\u0301.${tag}@EXAMPLE.COM `, password: P1 })).status).toBe(200)

    const ascii = `wide.${tag}@example.com`
    const wide = [...ascii].map((c) => /[a-z0-9.]/.test(c) ? String.fromCodePoint(c.codePointAt(0)! + 0xfee0) : c).join("").toUpperCase()
    expect(wide).not.toBe(ascii.toUpperCase())
    const w = await call(app, "POST", "/api/auth/register", { email: wide, password: P1 })
    expect(w.status).toBe(201)
    expect(w.body["data"].user.email).toBe(ascii)
    expect((await call(app, "POST", "/api/auth/register", { email: ascii, password: P1 })).status).toBe(409)
    const rows = await db.query("SELECT count(*)::int AS n FROM users WHERE email IN ($1, $2)", [composed, ascii])
    expect(rows.rows[0].n).toBe(2)

    // The profile email change applies the same rule.
    const other = await register()
    const taken = await call(app, "PUT", "/api/auth/profile", { currentPassword: P1, email: decomposed.toUpperCase() }, bearer(other.token))
    expect(taken.status).toBe(409)
  })

  it("refuses what is not an address after normalisation: zero-width characters, a fullwidth @, no @ at all", async () => {
    for (const email of [`a\u200bb.${Date.now()}@example.com`, `ab.${Date.now()}\uff20example.com`, `x@y@example.com`, `soft\u00adhyphen@example.com`]) {
      const r = await call(app, "POST", "/api/auth/register", { email, password: P1 })
      expect(r.status, JSON.stringify(email)).toBe(400)
      expect(r.body).toMatchObject({ success: false, code: "VALIDATION_ERROR" })
    }
  })

  it("the email migration normalises existing rows, leaving an address whose normalised form is taken", async () => {
    const tag = freshEmail("t").split("@")[0]!.replace(/\W/g, "")
    const hash = await storedHash((await register()).user.id)
    await db.query("INSERT INTO users (email, password_hash) VALUES ($1, $3), ($2, $3), ($4, $3)", [
      `jose\u0301.m${tag}@example.com`, `dup.${tag}@example.com`, hash, `\uff44up.${tag}@example.com`
    ])
    const { default: normalizeEmails } = await import("../../src/migrations/0004_normalize_emails.js")
    await Effect.runPromise(normalizeEmails.pipe(Effect.provide(app.context), Logger.withMinimumLogLevel(LogLevel.None)))
    const emails = (await db.query("SELECT email FROM users WHERE email LIKE $1", [`%${tag}@example.com`])).rows.map((r) => r.email).sort()
    expect(emails).toEqual([`dup.${tag}@example.com`, `jos\u00e9.m${tag}@example.com`, `\uff44up.${tag}@example.com`].sort())
  })
})
