import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect } from "effect"
import { Redis } from "ioredis"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { HttpConnections } from "../../src/http/platform/HttpServerLive.js"
import { Ledger } from "../../src/services/credits/Ledger.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { accessLine, accessLines, type InProcessApp, startApp } from "../support/inProcessApp.js"
import { PrivateRedis } from "../support/redisServer.js"
import { makeFixtures } from "./media.js"
import { mixSettings } from "./settings.js"

const PASSWORD = "Correct-Horse-42"
const ALLOWED = "https://app.lumiku.com"
const ROUTE = "/api/apps/video-mixer/generate"
const OTHER_UUID = "7d0f0b1e-5a8e-4c52-9a4f-3f1b2c3d4e5f"
const SETTINGS = mixSettings()

interface Answer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

const leanAnswers = (app: InProcessApp) => Context.get(app.context, HttpConnections).leanAnswers()

const post = async (app: InProcessApp, headers: Record<string, string>, body: string | Buffer): Promise<Answer> => {
  const response = await fetch(app.url(ROUTE), { method: "POST", headers, body })
  const kept = [...response.headers].filter(([name]) => name !== "date" && name !== "keep-alive" && name !== "connection")
  return { status: response.status, headers: Object.fromEntries(kept), body: await response.text() }
}

/**
 * POST /api/apps/video-mixer/generate is answered by the Node server on the lean path
 * (http/videoMixer/generateRoute.ts) unless the app is built without lean routes. Two apps over the
 * same database and Redis, one each way, must answer every case alike: status, every header and the
 * body (ids, balances and remaining counts aside, which differ per request by design).
 */
describe("the lean generate route answers as the HttpApi route does", () => {
  let lean: InProcessApp
  let full: InProcessApp
  let db: pg.Pool
  let work: string
  let clip: Buffer
  const env = testEnv({
    ROLE: "api",
    LOG_LEVEL: "info",
    REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}leangen:`,
    CORS_ORIGIN: ALLOWED,
    RATE_LIMIT_GENERAL: "1000 per 1 minute",
    RATE_LIMIT_VIDEO_MIXER_GENERATE: "6 per 1 minute",
    RATE_LIMIT_REGISTER: "1000 per 1 minute",
    RATE_LIMIT_UPLOAD: "1000 per 1 minute",
    RATE_LIMIT_PROJECT_CREATE: "1000 per 1 minute",
    VIDEO_MIXER_MAX_OUTPUTS: "5",
    JWT_SECRET: "lean-generate-test-secret-0123456789abcdef"
  })

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-leangen-"))
    clip = fs.readFileSync((await makeFixtures(work))[0]!)
    db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
    lean = await startApp(env)
    full = await startApp(env, { leanRoutes: false })
  }, 120_000)
  afterAll(async () => {
    await lean?.close()
    await full?.close()
    await db?.end()
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  })

  /** A user with a Video Mixer project holding one clip. */
  const stocked = async () => {
    const registered = await call(lean, "POST", "/api/auth/register", { email: freshEmail("leangen"), password: PASSWORD })
    expect(registered.status).toBe(201)
    const token = registered.body["data"].token as string
    const project = await call(lean, "POST", "/api/apps/video-mixer/projects", { name: "P" }, bearer(token))
    expect(project.status).toBe(201)
    const projectId = project.body["project"].id as string
    const form = new FormData()
    form.append("projectId", projectId)
    form.append("file", new Blob([clip], { type: "video/mp4" }), "clip.mp4")
    const uploaded = await fetch(lean.url("/api/apps/video-mixer/videos/upload"), { method: "POST", headers: bearer(token), body: form })
    expect(uploaded.status).toBe(201)
    return { token, userId: registered.body["data"].user.id as string, projectId }
  }
  const json = { "content-type": "application/json" }
  const request = (projectId: string, totalVideos = 1) => JSON.stringify({ projectId, totalVideos, settings: SETTINGS })

  /** The same request on both apps (each with its own request id), compared field by field; both answers returned. */
  const both = async (id: string, headers: Record<string, string>, body: string | Buffer, taken = true) => {
    const before = leanAnswers(lean)
    const a = await post(lean, { ...headers, "x-request-id": `lean-${id}-0001` }, body)
    const b = await post(full, { ...headers, "x-request-id": `full-${id}-0001` }, body)
    expect(leanAnswers(lean)).toBe(before + (taken ? 1 : 0))
    const masked = (x: Answer, requestId: string) => {
      const headers: Record<string, string> = { ...x.headers, "x-request-id": "(id)" }
      for (const name of ["ratelimit-remaining", "x-ratelimit-remaining", "ratelimit-reset", "x-ratelimit-reset", "content-length"]) {
        if (name in headers) headers[name] = "(n)"
      }
      const body = x.body.replace(requestId, "(id)")
        .replace(/"id":"[0-9a-f-]{36}"/g, "\"id\":\"(uuid)\"")
        .replace(/"createdAt":"[^"]+"/g, "\"createdAt\":\"(time)\"")
        .replace(/"creditBalance":\d+/g, "\"creditBalance\":(n)")
        .replace(/"current":\d+/g, "\"current\":(n)")
      return { ...x, headers, body }
    }
    expect(masked(a, `lean-${id}-0001`)).toEqual(masked(b, `full-${id}-0001`))
    return { a, b }
  }

  it("accepted: 201, the generation, the charge and the route limit's headers, CORS for an allowed Origin; each app charged once", async () => {
    const user = await stocked()
    const { a, b } = await both("ok", { ...json, ...bearer(user.token), origin: ALLOWED }, request(user.projectId))
    expect(a.status).toBe(201)
    expect(a.headers["ratelimit-limit"]).toBe("6")
    expect(a.headers["access-control-allow-origin"]).toBe(ALLOWED)
    const [x, y] = [JSON.parse(a.body), JSON.parse(b.body)]
    expect(x).toMatchObject({ success: true, creditUsed: 1, creditBalance: 99, message: "Generating 1 video", generation: { status: "pending", totalVideos: 1 } })
    expect(y.creditBalance).toBe(98)
    const rows = await db.query("SELECT id, charged FROM generations WHERE user_id = $1 ORDER BY created_at", [user.userId])
    expect(rows.rows.map((r) => r.id)).toEqual([x.generation.id, y.generation.id])
    expect(rows.rows.map((r) => Number(r.charged))).toEqual([1, 1])
  })

  it.each([
    // fetch trims the header value, so the empty bearer arrives as "Bearer": no scheme, the usual path
    ["a forged token", { authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl" }, true],
    ["an empty bearer", { authorization: "Bearer   " }, false],
    ["a bearer of spaces and a tab", { authorization: "Bearer \t x" }, true]
  ])("%s: the same 401", async (name, headers, taken) => {
    const user = await stocked()
    const { a } = await both(`auth-${name.replace(/\W/g, "")}`, { ...json, ...headers }, request(user.projectId), taken)
    expect(a.status).toBe(401)
    expect(JSON.parse(a.body)).toMatchObject({ success: false, code: "UNAUTHORIZED" })
  })

  it("bodies the platform refuses: malformed JSON, too deep, a NUL, schema errors; nothing is charged", async () => {
    const user = await stocked()
    const auth = { ...json, ...bearer(user.token) }
    const valid = request(user.projectId)
    const cases: Array<[string, string | Buffer, number, string]> = [
      ["malformed", "{\"projectId\":", 400, "MALFORMED_REQUEST"],
      ["bom", `\uFEFF${valid}`, 400, "MALFORMED_REQUEST"],
      // an invalid UTF-8 byte inside a string: read as U+FFFD on both paths, then refused by the schema
      ["bad-utf8", Buffer.from(Buffer.from(valid.replace("capcut", "cap\u0001cut"), "utf8").map((b) => (b === 1 ? 0xff : b))), 400, "VALIDATION_ERROR"],
      ["deep", `${"[".repeat(100)}${"]".repeat(100)}`, 400, "MALFORMED_REQUEST"],
      ["nul", JSON.stringify({ projectId: user.projectId, totalVideos: 1, settings: { ...SETTINGS, metadataSource: "cap\u0000cut" } }), 400, "VALIDATION_ERROR"],
      ["type", JSON.stringify({ projectId: user.projectId, totalVideos: "one", settings: SETTINGS }), 400, "VALIDATION_ERROR"],
      ["missing", JSON.stringify({ totalVideos: 1, settings: SETTINGS }), 400, "VALIDATION_ERROR"],
      ["array", "[]", 400, "VALIDATION_ERROR"]
    ]
    for (const [id, body, status, code] of cases) {
      const { a } = await both(`body-${id}`, auth, body)
      expect([id, a.status, JSON.parse(a.body).code]).toEqual([id, status, code])
    }
    expect((await db.query("SELECT count(*)::int AS n FROM generations WHERE user_id = $1", [user.userId])).rows[0].n).toBe(0)
  })

  it("refusals of the service: no such project, more outputs than allowed, too few credits", async () => {
    const user = await stocked()
    const auth = { ...json, ...bearer(user.token) }
    expect((await both("404", auth, request(OTHER_UUID))).a.status).toBe(404)
    const tooMany = await both("too-many", auth, request(user.projectId, 6))
    expect(tooMany.a.status).toBe(400)
    expect(JSON.parse(tooMany.a.body)).toMatchObject({ code: "VALIDATION_ERROR", field: "totalVideos" })
    await Effect.runPromise(Effect.provide(
      Effect.flatMap(Ledger, (ledger) => ledger.debit({ userId: user.userId, amount: 100, key: `drain:${user.userId}`, kind: "adjustment", reason: "test" })),
      lean.context
    ))
    const poor = await both("402", auth, request(user.projectId))
    expect(poor.a.status).toBe(402)
    expect(JSON.parse(poor.a.body)).toMatchObject({ code: "INSUFFICIENT_CREDITS", required: 1, current: 0 })
  })

  it("a payload that does not decode is not counted against the route's limit (it never reaches the handler)", async () => {
    const user = await stocked()
    const auth = { ...json, ...bearer(user.token) }
    for (const body of ["{\"projectId\":", JSON.stringify({ projectId: user.projectId, totalVideos: "x", settings: SETTINGS })]) {
      expect((await post(lean, auth, body)).status).toBe(400)
      expect((await post(full, auth, body)).status).toBe(400)
    }
    const first = await post(lean, auth, request(user.projectId))
    expect(first.status).toBe(201)
    expect(first.headers["ratelimit-remaining"]).toBe("5")
  })

  it("the route's own limit, counted across both apps: 429 with Retry-After and its headers", async () => {
    const user = await stocked()
    const auth = { ...json, ...bearer(user.token) }
    const statuses = []
    for (let i = 0; i < 6; i++) statuses.push((await post(i % 2 === 0 ? lean : full, auth, request(user.projectId))).status)
    expect(statuses).toEqual([201, 201, 201, 201, 201, 201])
    const { a } = await both("429", auth, request(user.projectId))
    expect(a.status).toBe(429)
    expect(a.headers["ratelimit-limit"]).toBe("6")
    expect(Number(a.headers["retry-after"])).toBeGreaterThan(0)
  })

  it("requests it does not take go the usual way with the usual answer: another type, +json, no bearer scheme, chunked", async () => {
    const user = await stocked()
    const body = request(user.projectId)
    expect((await both("text", { "content-type": "text/plain", ...bearer(user.token) }, body, false)).a.status).toBe(415)
    expect((await both("structured", { "content-type": "application/vnd.api+json", ...bearer(user.token) }, body, false)).a.status).toBe(201)
    expect((await both("basic", { ...json, authorization: "Basic dXNlcjpwYXNz" }, body, false)).a.status).toBe(401)
    const before = leanAnswers(lean)
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(lean.url(ROUTE), { method: "POST", headers: { ...json, ...bearer(user.token), "transfer-encoding": "chunked" } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on("error", reject)
      req.write(body.slice(0, 10))
      req.end(body.slice(10))
    })
    expect(chunked).toBe(201)
    expect(leanAnswers(lean)).toBe(before)
  })

  it("a client that goes away before its body is sent: nothing is charged, the line says 499, the server goes on", async () => {
    const user = await stocked()
    const requestId = "lean-gone-0001"
    await new Promise<void>((resolve) => {
      const req = http.request(lean.url(ROUTE), {
        method: "POST",
        headers: { ...json, ...bearer(user.token), "content-length": "500", "x-request-id": requestId }
      })
      req.on("error", () => resolve())
      req.write("{\"projectId\":")
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 100)
    })
    await new Promise((r) => setTimeout(r, 300)) // the access log is flushed in batches
    expect(accessLines(lean, requestId)).toEqual([expect.objectContaining({ method: "POST", route: ROUTE, status: 499 })])
    expect((await db.query("SELECT count(*)::int AS n FROM generations WHERE user_id = $1", [user.userId])).rows[0].n).toBe(0)
    expect((await post(lean, { ...json, ...bearer(user.token) }, request(user.projectId))).status).toBe(201)
  })

  it("one access-log line per request, field for field as the usual path writes it", async () => {
    const user = await stocked()
    await both("logged", { ...json, ...bearer(user.token) }, request(user.projectId))
    await new Promise((r) => setTimeout(r, 300))
    const a = accessLine(lean, "lean-logged-0001")
    const b = accessLine(full, "full-logged-0001")
    expect(a).toMatchObject({ method: "POST", route: ROUTE, status: 201 })
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort())
  })
})

describe("the lean generate route, its two limits in one round trip, and Redis gone", () => {
  let redis: PrivateRedis
  let lean: InProcessApp
  let full: InProcessApp
  let direct: Redis
  let work: string
  let clip: Buffer
  const prefix = `${inject("redisKeyPrefix")}leangen2:`
  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-leangen2-"))
    clip = fs.readFileSync((await makeFixtures(work))[0]!)
    redis = await PrivateRedis.start()
    const env = testEnv({
      ROLE: "api",
      REDIS_PORT: String(redis.port),
      REDIS_KEY_PREFIX: prefix,
      JWT_SECRET: "lean-generate-redis-test-secret-0123456789abcdef",
      RATE_LIMIT_GENERAL: "4 per 1 minute",
      RATE_LIMIT_VIDEO_MIXER_GENERATE: "100 per 1 minute",
      RATE_LIMIT_REGISTER: "1000 per 1 minute",
      RATE_LIMIT_UPLOAD: "1000 per 1 minute",
      RATE_LIMIT_PROJECT_CREATE: "1000 per 1 minute"
    })
    lean = await startApp(env)
    full = await startApp(env, { leanRoutes: false })
    direct = new Redis({ port: redis.port, keyPrefix: prefix, maxRetriesPerRequest: 0, enableOfflineQueue: false })
    direct.on("error", () => undefined)
  }, 120_000)
  afterAll(async () => {
    direct?.disconnect()
    await lean?.close()
    await full?.close()
    await redis?.stop()
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  })

  it("over the general limit, the route's window is not counted; with Redis gone both paths refuse the same 503 (the route fails closed)", async () => {
    const registered = await call(lean, "POST", "/api/auth/register", { email: freshEmail("leangen2"), password: PASSWORD })
    const token = registered.body["data"].token as string
    const userId = registered.body["data"].user.id as string
    const auth = { "content-type": "application/json", ...bearer(token) }
    const project = await call(lean, "POST", "/api/apps/video-mixer/projects", { name: "P" }, bearer(token))
    const projectId = project.body["project"].id as string
    const form = new FormData()
    form.append("projectId", projectId)
    form.append("file", new Blob([clip], { type: "video/mp4" }), "clip.mp4")
    expect((await fetch(lean.url("/api/apps/video-mixer/videos/upload"), { method: "POST", headers: bearer(token), body: form })).status).toBe(201)
    // the general window already holds the project's creation and the upload: 2 of 4 left
    const body = JSON.stringify({ projectId, totalVideos: 1, settings: SETTINGS })
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await post(lean, auth, body)).status)
    expect(statuses).toEqual([201, 201, 429, 429])
    expect(await direct.zcard(`rl:videoMixerGenerate:user:${userId}`)).toBe(2)

    await redis.stop()
    const a = await post(lean, { ...auth, "x-request-id": "lean-gone-redis-01" }, body)
    const b = await post(full, { ...auth, "x-request-id": "full-gone-redis-01" }, body)
    expect([a.status, b.status]).toEqual([503, 503])
    expect(a.body.replace("lean-gone-redis-01", "(id)")).toBe(b.body.replace("full-gone-redis-01", "(id)"))
  })
})
