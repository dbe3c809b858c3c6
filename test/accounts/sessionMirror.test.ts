import { randomBytes } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Effect, Metric } from "effect"
import { Redis } from "ioredis"
import { SignJWT } from "jose"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { sessionMirrorChecks } from "../../src/services/accounts/SessionMirror.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { PrivateRedis } from "../support/redisServer.js"
import { TcpProxy } from "../support/tcpProxy.js"

const PASSWORD = "Correct-Horse-42"

/** Mirror lookups so far in this process (both replicas), by result. */
const checks = (result: "hit" | "miss" | "unusable") =>
  Effect.runPromise(Metric.value(Metric.tagged(sessionMirrorChecks, "result", result))).then((s) => s.count)

/**
 * Two replicas (A and B) over one Postgres and one private Redis; A reaches Redis through a proxy
 * that a test can cut. The promise under test: a revoked session is never accepted from the mirror.
 */
describe("sessions mirrored in Redis, across replicas", () => {
  let redis: PrivateRedis
  let proxy: TcpProxy
  let a: InProcessApp
  let b: InProcessApp
  let direct: Redis
  const prefix = `${inject("redisKeyPrefix")}mirror:`
  const secret = randomBytes(32).toString("base64url")

  beforeAll(async () => {
    // Snapshots only on SAVE, loaded at start: a restart can bring back what was saved.
    redis = await PrivateRedis.start(["--dir", mkdtempSync(path.join(tmpdir(), "lumiku-mirror-")), "--dbfilename", "snapshot.rdb"])
    proxy = await TcpProxy.start(redis.port)
    const shared = { ROLE: "api", JWT_SECRET: secret, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_GENERAL: "1000 per 1 minute", RATE_LIMIT_REGISTER: "1000 per 1 minute", RATE_LIMIT_LOGIN: "1000 per 1 minute" }
    a = await startApp(testEnv({ ...shared, REDIS_PORT: String(proxy.port) }))
    b = await startApp(testEnv({ ...shared, REDIS_PORT: String(redis.port) }))
    direct = new Redis({ port: redis.port, keyPrefix: prefix, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 100 })
    direct.on("error", () => undefined)
  })
  afterAll(async () => {
    direct?.disconnect()
    await a?.close()
    await b?.close()
    await proxy?.close()
    await redis?.stop()
  })

  const register = async (app: InProcessApp) => {
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("mirror"), password: PASSWORD })
    expect(r.status).toBe(201)
    return r.body["data"].token as string
  }
  const balance = (app: InProcessApp, token: string) => call(app, "GET", "/api/credits/balance", undefined, bearer(token))
  /** Until B answers this token from the mirror (the replicas trust it shortly after they start or reconnect). */
  const mirroredOn = (app: InProcessApp, token: string) =>
    waitUntil(async () => {
      const before = await checks("hit")
      const r = await balance(app, token)
      return r.status === 200 && (await checks("hit")) > before
    }, 5_000)

  it("after Postgres found a session live, the next request is answered from the mirror, with the same body and limit headers", async () => {
    const token = await register(a)
    const first = await balance(b, token)
    await mirroredOn(b, token)
    const hit = await balance(b, token)
    expect(hit.status).toBe(200)
    expect(hit.body).toEqual(first.body)
    expect(hit.body).toEqual({ success: true, data: { balance: 100 } })
    expect(hit.headers.get("ratelimit-limit")).toBe("1000")
    expect(Number(hit.headers.get("ratelimit-remaining"))).toBeLessThan(Number(first.headers.get("ratelimit-remaining")))
  })

  it("the mirror never answers for a validly signed token naming another user's session", async () => {
    const victim = await register(a)
    const attacker = await register(a)
    await mirroredOn(b, victim)
    const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { sub: string; sid: string }
    // Signed with the real key: the user is the attacker, the session the victim's (mirrored).
    const forged = await new SignJWT({ sid: claimsOf(victim).sid })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(claimsOf(attacker).sub)
      .setIssuer("lumiku")
      .setIssuedAt()
      .setExpirationTime("5 minutes")
      .sign(new TextEncoder().encode(secret))
    const before = await checks("hit")
    const r = await balance(b, forged)
    expect(r.status).toBe(401)
    expect(await checks("hit")).toBe(before)
  })

  it("a logout on A is refused on B on the very next request", async () => {
    const token = await register(a)
    await mirroredOn(b, token)
    expect((await call(a, "POST", "/api/auth/logout", undefined, bearer(token))).status).toBeLessThan(300)
    const after = await balance(b, token)
    expect(after.status).toBe(401)
    expect(after.body).toMatchObject({ success: false, code: "UNAUTHORIZED" })
  })

  it("a password change on A ends every session of the user on B at once; the new token works on B", async () => {
    const email = freshEmail("mirror")
    const registered = await call(a, "POST", "/api/auth/register", { email, password: PASSWORD })
    const first = registered.body["data"].token as string
    const second = (await call(a, "POST", "/api/auth/login", { email, password: PASSWORD })).body["data"].token as string
    await mirroredOn(b, first)
    await mirroredOn(b, second)
    const changed = await call(a, "PUT", "/api/auth/profile", { currentPassword: PASSWORD, newPassword: "Another-Horse-43" }, bearer(first))
    expect(changed.status).toBe(200)
    expect((await balance(b, first)).status).toBe(401)
    expect((await balance(b, second)).status).toBe(401)
    expect((await balance(b, changed.body["data"].token)).status).toBe(200)
  })

  it("A cut off from Redis: its logout still revokes on B (B tombstones it from Postgres' notification), and A answers from Postgres", async () => {
    const token = await register(a)
    const other = await register(a)
    await mirroredOn(b, token)
    proxy.setMode("refuse")
    try {
      // A no longer trusts its mirror: Postgres answers, the limit is counted in this process.
      await waitUntil(async () => (await balance(a, other)).status === 200, 3_000)
      expect((await call(a, "POST", "/api/auth/logout", undefined, bearer(token))).status).toBeLessThan(300)
      const elapsed = await waitUntil(async () => (await balance(b, token)).status === 401, 2_000)
      expect(elapsed).toBeLessThan(1_000)
      expect((await balance(a, token)).status).toBe(401)
    } finally {
      proxy.setMode("pass")
    }
  })

  it("Redis restarted with a stale live record (a snapshot from before a revocation made while it was down): refused", async () => {
    const token = await register(b)
    await mirroredOn(b, token)
    const sid = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString())["sid"] as string
    const staleRecord = await direct.get(`sess:${sid}`)
    expect(staleRecord).not.toBeNull()
    // The snapshot Redis will come back from: the live record and the generation as they are now.
    await direct.save()
    await redis.stop()
    // Revoked in Postgres while no replica can reach Redis: no tombstone can be written anywhere.
    expect((await call(a, "POST", "/api/auth/logout", undefined, bearer(token))).status).toBeLessThan(300)
    await redis.start()
    // Both replicas reconnect and move the generation on before they trust the mirror again ...
    // (registering fails closed until A's Redis connection is back)
    let fresh = ""
    await waitUntil(async () => {
      const r = await call(a, "POST", "/api/auth/register", { email: freshEmail("mirror"), password: PASSWORD })
      fresh = r.body["data"]?.token ?? ""
      return r.status === 201
    }, 5_000)
    await mirroredOn(b, fresh)
    await mirroredOn(a, fresh)
    // ... so the stale record is never used.
    expect(await direct.get(`sess:${sid}`)).toBe(staleRecord)
    const before = await checks("hit")
    expect((await balance(b, token)).status).toBe(401)
    expect((await balance(a, token)).status).toBe(401)
    expect(await checks("hit")).toBe(before)
  })
})
