import * as http from "node:http"
import { Context } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { HttpConnections } from "../../src/http/platform/HttpServerLive.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { accessLine, type InProcessApp, startApp } from "../support/inProcessApp.js"
import { PrivateRedis } from "../support/redisServer.js"

const PASSWORD = "Correct-Horse-42"
const ALLOWED = "https://app.lumiku.com"

const leanAnswers = (app: InProcessApp) => Context.get(app.context, HttpConnections).leanAnswers()

interface Answer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** The answer, without what differs per request anyway (the date, the window's remaining count and reset). */
const get = async (app: InProcessApp, headers: Record<string, string>): Promise<Answer> => {
  const response = await fetch(app.url("/api/credits/balance"), { headers })
  const kept = [...response.headers].filter(([name]) => name !== "date" && name !== "keep-alive" && name !== "connection")
  return { status: response.status, headers: Object.fromEntries(kept), body: await response.text() }
}

const register = async (app: InProcessApp) => {
  const registered = await call(app, "POST", "/api/auth/register", { email: freshEmail("lean"), password: PASSWORD })
  expect(registered.status).toBe(201)
  return registered.body["data"].token as string
}

/**
 * GET /api/credits/balance is answered by the Node server on the lean path (http/credits/balanceRoute.ts)
 * unless the app is built without lean routes. Two apps over the same database and Redis, one each way,
 * must answer every case the same: status, every header (rate-limit and CORS included) and body.
 */
describe("the lean balance route answers as the HttpApi route does", () => {
  let lean: InProcessApp
  let full: InProcessApp
  const env = testEnv({ ROLE: "api", LOG_LEVEL: "info", CORS_ORIGIN: ALLOWED, RATE_LIMIT_GENERAL: "4 per 1 minute", RATE_LIMIT_REGISTER: "100 per 1 minute", JWT_SECRET: "lean-route-test-secret-0123456789abcdef" })
  beforeAll(async () => {
    lean = await startApp(env)
    full = await startApp(env, { leanRoutes: false })
  })
  afterAll(async () => {
    await lean?.close()
    await full?.close()
  })

  /** The same request on both apps (each with its own request id), compared; the lean answer is returned. */
  const both = async (id: string, headers: Record<string, string>) => {
    const before = leanAnswers(lean)
    const a = await get(lean, { ...headers, "x-request-id": `lean-${id}-0001` })
    const b = await get(full, { ...headers, "x-request-id": `full-${id}-0001` })
    expect(leanAnswers(lean)).toBe(before + 1)
    expect(a.headers["x-request-id"]).toBe(`lean-${id}-0001`)
    expect(b.headers["x-request-id"]).toBe(`full-${id}-0001`)
    // One window per user in Redis: the second app's answer counts one request more.
    if (a.headers["ratelimit-remaining"] !== "0") {
      expect(Number(a.headers["ratelimit-remaining"])).toBe(Number(b.headers["ratelimit-remaining"]) + 1)
    }
    const same = (x: Answer, requestId: string) => ({
      ...x,
      headers: { ...x.headers, "x-request-id": "(id)", "ratelimit-remaining": "(n)", "x-ratelimit-remaining": "(n)" },
      body: x.body.replace(requestId, "(id)")
    })
    expect(same(a, `lean-${id}-0001`)).toEqual(same(b, `full-${id}-0001`))
    return a
  }

  it("a signed-in user: 200, the balance, the limit's headers; CORS headers for an allowed Origin only", async () => {
    const plain = await both("ok", bearer(await register(lean)))
    expect(plain.status).toBe(200)
    expect(JSON.parse(plain.body)).toEqual({ success: true, data: { balance: 100 } })
    expect(plain.headers["ratelimit-limit"]).toBe("4")
    expect(plain.headers["vary"]).toBe("Origin")
    expect(plain.headers["access-control-allow-origin"]).toBeUndefined()
    const allowed = await both("cors", { ...bearer(await register(lean)), origin: ALLOWED })
    expect(allowed.headers["access-control-allow-origin"]).toBe(ALLOWED)
    expect(allowed.headers["access-control-allow-credentials"]).toBe("true")
    const denied = await both("denied", { ...bearer(await register(lean)), origin: "https://evil.example" })
    expect(denied.status).toBe(200)
    expect(denied.headers["access-control-allow-origin"]).toBeUndefined()
  })

  it.each([
    ["no Authorization", {}],
    ["another scheme", { authorization: "Basic dXNlcjpwYXNz" }],
    ["an empty bearer", { authorization: "Bearer   " }],
    ["a forged token", { authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl" }],
    ["a NUL in the token", { authorization: "Bearer abc\u0000def" }]
  ])("%s: the same 401 in the one error body", async (name, headers) => {
    // fetch refuses NUL in a header value, as any client library should; the server never sees it.
    if (name === "a NUL in the token") {
      await expect(get(lean, headers)).rejects.toThrow()
      return
    }
    const answer = await both(`401-${name.replace(/\W/g, "")}`, headers)
    expect(answer.status).toBe(401)
    expect(answer.headers["www-authenticate"]).toBe("Bearer")
    const body = JSON.parse(answer.body)
    expect(body).toMatchObject({ success: false, code: "UNAUTHORIZED" })
    expect(body.error).toBe(body.message)
  })

  it("a session signed out is refused at once on both paths", async () => {
    const token = await register(lean)
    expect((await get(lean, bearer(token))).status).toBe(200)
    expect((await call(full, "POST", "/api/auth/logout", {}, bearer(token))).status).toBeLessThan(300)
    const answer = await both("revoked", bearer(token))
    expect(answer.status).toBe(401)
  })

  it("over the general per-user limit: the same 429 with Retry-After and the limit's headers, counted across both apps", async () => {
    const token = await register(lean)
    // The window is per user and shared in Redis: 4 requests, alternating between the apps, then both refuse.
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await get(i % 2 === 0 ? lean : full, bearer(token))).status)
    expect(statuses).toEqual([200, 200, 200, 200])
    const over = await both("429", bearer(token))
    expect(over.status).toBe(429)
    expect(Number(over.headers["retry-after"])).toBeGreaterThan(0)
    expect(over.headers["ratelimit-remaining"]).toBe("0")
    expect(JSON.parse(over.body)).toMatchObject({ success: false, code: "RATE_LIMITED", limit: 4 })
  })

  it("a query string is the same route; a body on the GET, and every other method, take the usual path", async () => {
    const token = await register(lean)
    const before = leanAnswers(lean)
    const withQuery = await fetch(lean.url("/api/credits/balance?fresh=1"), { headers: bearer(token) })
    expect(withQuery.status).toBe(200)
    expect(leanAnswers(lean)).toBe(before + 1)
    const post = await call(lean, "POST", "/api/credits/balance", {}, bearer(token))
    expect(post.status).toBe(404)
    const withBody = await new Promise<number>((resolve, reject) => {
      const request = http.request(lean.url("/api/credits/balance"), {
        method: "GET",
        headers: { ...bearer(token), "content-type": "application/json", "content-length": "2" }
      }, (response) => {
        response.resume()
        resolve(response.statusCode ?? 0)
      })
      request.on("error", reject)
      request.end("{}")
    })
    expect(withBody).toBe(200)
    expect(leanAnswers(lean)).toBe(before + 1)
  })

  it("one access-log line per request with its request id, field for field as the usual path writes it", async () => {
    const token = await register(lean)
    await both("logged", bearer(token))
    await new Promise((r) => setTimeout(r, 250)) // the access log is flushed in batches
    const a = accessLine(lean, "lean-logged-0001")
    const b = accessLine(full, "full-logged-0001")
    expect(a).toMatchObject({ method: "GET", route: "/api/credits/balance", status: 200 })
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort())
  })
})

describe("the lean balance route with Redis gone", () => {
  let redis: PrivateRedis
  let app: InProcessApp
  beforeAll(async () => {
    redis = await PrivateRedis.start()
    app = await startApp(testEnv({ ROLE: "api", REDIS_PORT: String(redis.port), RATE_LIMIT_GENERAL: "3 per 1 minute" }))
  })
  afterAll(async () => {
    await app?.close()
    await redis?.stop()
  })

  it("sessions come from Postgres and the per-user limit holds in this process: 3 answers, then 429", async () => {
    const token = await register(app)
    await redis.stop()
    const before = leanAnswers(app)
    const statuses = []
    for (let i = 0; i < 5; i++) statuses.push((await get(app, bearer(token))).status)
    expect(statuses).toEqual([200, 200, 200, 429, 429])
    expect(leanAnswers(app)).toBe(before + 5)
  })
})
