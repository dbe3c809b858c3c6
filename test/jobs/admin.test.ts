import { Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { JobQueues } from "../../src/services/jobs/JobQueues.js"
import { defineJob } from "../../src/services/jobs/JobDefinition.js"
import { JobPermanent } from "../../src/services/jobs/JobError.js"
import type { JobHandler } from "../../src/workers/jobs/runtime.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"
import { PrivateRedis } from "../support/redisServer.js"

const QUEUE = "admin-test"
const TOKEN = "admin-test-token-0123456789abcdefghijklmnopqrstuvwxyz"
const JOB_IDS = ["job-a", "job-b", "job-c", "job-d", "job-e"]

// Fails permanently (dead-lettered after one attempt) until the test flips it.
let failing = true
const runs = new Map<string, number>()
const completed = new Set<string>()

const definition = defineJob({
  queue: QUEUE,
  payload: Schema.Struct({ n: Schema.Number }),
  timeout: "5 seconds",
  concurrency: 2
})
const handler: JobHandler<{ readonly n: number }, { readonly n: number }, never> = {
  definition,
  run: (payload, context) =>
    Effect.suspend(() => {
      runs.set(context.jobId, (runs.get(context.jobId) ?? 0) + 1)
      if (failing) return Effect.fail(new JobPermanent({ reason: `n=${payload.n} is not accepted` }))
      completed.add(context.jobId)
      return Effect.void
    })
}

// A second queue whose compensation waits for the test: a dead letter with its compensation running.
const HELD_QUEUE = "admin-held"
let releaseCompensation: () => void = () => undefined
const compensationReleased = new Promise<void>((resolve) => (releaseCompensation = resolve))
let compensationRunning = false
let compensated = 0
const heldDefinition = defineJob({ queue: HELD_QUEUE, payload: Schema.Struct({ n: Schema.Number }), timeout: "5 seconds", concurrency: 1 })
const heldHandler: JobHandler<{ readonly n: number }, { readonly n: number }, never> = {
  definition: heldDefinition,
  run: (payload) => Effect.fail(new JobPermanent({ reason: `n=${payload.n} is not accepted` })),
  compensate: () =>
    Effect.sync(() => (compensationRunning = true)).pipe(
      Effect.zipRight(Effect.promise(() => compensationReleased)),
      Effect.zipRight(Effect.sync(() => void compensated++))
    )
}

type Body = Record<string, any>

const expectEnvelope = (body: Body, code: string) => {
  expect(body["success"]).toBe(false)
  expect(body["code"]).toBe(code)
  expect(typeof body["message"]).toBe("string")
  expect(body["error"]).toBe(body["message"])
  expect(body["requestId"]).toMatch(/.{8,}/)
}

describe("admin API for dead letters", () => {
  let app: InProcessApp
  const call = async (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const { token = TOKEN, ...rest } = init
    const headers = new Headers(rest.headers)
    if (token !== null) headers.set("authorization", `Bearer ${token}`)
    const response = await fetch(app.url(`/api/admin${path}`), { ...rest, headers })
    const text = await response.text()
    return { status: response.status, headers: response.headers, text, body: (text === "" ? {} : JSON.parse(text)) as Body }
  }

  beforeAll(async () => {
    app = await startApp(testEnv({ ADMIN_TOKEN: TOKEN }), { jobHandlers: [handler, heldHandler] })
    await Effect.runPromise(
      Effect.gen(function*() {
        const queues = yield* JobQueues
        for (const [i, jobId] of JOB_IDS.entries()) yield* queues.enqueue(definition, jobId, { n: i })
      }).pipe(Effect.provide(app.context))
    )
    await waitUntil(async () => (await call(`/queues/${QUEUE}/dead-letters`)).body["total"] === JOB_IDS.length, 20_000)
  })
  afterAll(() => app?.close())

  describe("authentication", () => {
    it("401 without a token, with a wrong token, and with another scheme", async () => {
      const cases: Array<RequestInit & { token?: string | null }> = [
        { token: null },
        { token: "x" },
        { token: `${TOKEN.slice(0, -1)}X` },
        { token: `${TOKEN}${TOKEN}` },
        { token: null, headers: { authorization: `Token  ${TOKEN}` } }
      ]
      for (const init of cases) {
        const r = await call("/queues", init)
        expect(r.status).toBe(401)
        expectEnvelope(r.body, "UNAUTHORIZED")
      }
      expect((await call("/queues", { token: null })).body["message"]).toMatch(/Bearer/)
    })

    it("checks the token before validating the request", async () => {
      const r = await call(`/queues/${QUEUE}/dead-letters?limit=0`, { token: "wrong" })
      expect(r.status).toBe(401)
    })

    it("the token never appears in the logs", () => {
      expect(app.logLines().some((line) => line.includes(TOKEN))).toBe(false)
    })

    it("without ADMIN_TOKEN the operator token is refused (only an admin user's session opens the API)", async () => {
      const bare = await startApp(testEnv({ ROLE: "api" }))
      try {
        for (const [method, path] of [["GET", "/queues"], ["DELETE", `/queues/${QUEUE}/dead-letters/job-a`]] as const) {
          const r = await fetch(bare.url(`/api/admin${path}`), { method, headers: { authorization: `Bearer ${TOKEN}` } })
          const body = (await r.json()) as Body
          expect(r.status).toBe(401)
          expectEnvelope(body, "UNAUTHORIZED")
          expect(body["message"]).toMatch(/not valid for the admin API/)
        }
      } finally {
        await bare.close()
      }
    })
  })

  it("lists the queues with their counts", async () => {
    const r = await call("/queues")
    expect(r.status).toBe(200)
    const queue = (r.body["queues"] as Array<Body>).find((q) => q["name"] === QUEUE)
    expect(queue?.["counts"]).toMatchObject({ deadLettered: JOB_IDS.length, waiting: 0, active: 0 })
  })

  it("pages through the dead letters", async () => {
    const first = await call(`/queues/${QUEUE}/dead-letters?limit=2`)
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ total: JOB_IDS.length, offset: 0, limit: 2 })
    expect(first.body["items"]).toHaveLength(2)
    expect(first.headers.get("x-total-count")).toBe(String(JOB_IDS.length))

    const seen: Array<string> = []
    for (let offset = 0; offset < JOB_IDS.length; offset += 2) {
      const page = await call(`/queues/${QUEUE}/dead-letters?offset=${offset}&limit=2`)
      expect(page.body["offset"]).toBe(offset)
      seen.push(...(page.body["items"] as Array<Body>).map((item) => item["jobId"] as string))
    }
    expect(seen.sort()).toEqual([...JOB_IDS].sort())

    const defaults = await call(`/queues/${QUEUE}/dead-letters`)
    expect(defaults.body).toMatchObject({ offset: 0, limit: 20 })
    expect(defaults.body["items"]).toHaveLength(JOB_IDS.length)

    const past = await call(`/queues/${QUEUE}/dead-letters?offset=50`)
    expect(past.body).toMatchObject({ items: [], total: JOB_IDS.length })
  })

  it("shows one dead letter", async () => {
    const r = await call(`/queues/${QUEUE}/dead-letters/job-c`)
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({
      queue: QUEUE,
      jobId: "job-c",
      payload: { n: 2 },
      jobClass: "permanent",
      reason: "permanent failure",
      lastError: { tag: "JobPermanent", message: "permanent: n=2 is not accepted" },
      attemptsMade: 1
    })
    expect(Date.parse(r.body["deadLetteredAt"] as string)).not.toBeNaN()
  })

  it("404 in the error shape for an unknown queue or job", async () => {
    for (
      const path of [
        "/queues/no-such-queue/dead-letters",
        "/queues/no-such-queue/dead-letters/job-a",
        `/queues/${QUEUE}/dead-letters/no-such-job`
      ]
    ) {
      const r = await call(path)
      expect(r.status).toBe(404)
      expectEnvelope(r.body, "NOT_FOUND")
    }
    const retry = await call(`/queues/${QUEUE}/dead-letters/no-such-job/retry`, { method: "POST" })
    expect(retry.status).toBe(404)
    expectEnvelope(retry.body, "NOT_FOUND")
  })

  it("400 for a bad page or path parameter", async () => {
    for (
      const query of ["limit=0", "limit=101", "limit=abc", "limit=", "limit=1e1", "offset=-1", "offset=1.5", "limit=2&limit=3"]
    ) {
      const r = await call(`/queues/${QUEUE}/dead-letters?${query}`)
      expect(r.status, query).toBe(400)
      expectEnvelope(r.body, "VALIDATION_ERROR")
    }
    expect((await call(`/queues/${QUEUE}/dead-letters?limit=101`)).body["message"]).toMatch(/limit must be from 1 to 100/)
    const badId = await call(`/queues/${QUEUE}/dead-letters/bad%3Aid`)
    expect(badId.status).toBe(400)
    expect(badId.body["message"]).toMatch(/job id/)
    const badQueue = await call(`/queues/${"q".repeat(65)}/dead-letters`)
    expect(badQueue.status).toBe(400)
  })

  it("retries one: it runs again with a fresh budget and completes", async () => {
    failing = false
    const r = await call(`/queues/${QUEUE}/dead-letters/job-b/retry`, { method: "POST" })
    expect(r.status).toBe(202)
    expect(r.body).toEqual({ jobId: "job-b", queue: QUEUE, status: "re-enqueued" })
    await waitUntil(async () => completed.has("job-b"), 10_000)
    expect(runs.get("job-b")).toBe(2)
    expect((await call(`/queues/${QUEUE}/dead-letters/job-b`)).status).toBe(404)
    expect((await call(`/queues/${QUEUE}/dead-letters`)).body["total"]).toBe(JOB_IDS.length - 1)
  })

  it("409, not 503, while the dead letter's compensation is still running (its task locked by a worker) or another call handles it", async () => {
    await Effect.runPromise(JobQueues.pipe(Effect.flatMap((q) => q.enqueue(heldDefinition, "held-1", { n: 1 })), Effect.provide(app.context)))
    await waitUntil(async () => compensationRunning && (await call(`/queues/${HELD_QUEUE}/dead-letters/held-1`)).status === 200, 10_000)
    for (const init of [{ path: "/retry", method: "POST" }, { path: "", method: "DELETE" }]) {
      const r = await call(`/queues/${HELD_QUEUE}/dead-letters/held-1${init.path}`, { method: init.method })
      expect(r.status, init.method).toBe(409)
      expectEnvelope(r.body, "CONFLICT")
      expect(r.body["message"]).toMatch(/compensation has not finished/)
    }
    releaseCompensation()
    await waitUntil(async () => compensated === 1, 10_000)
    // two retries at once: one re-enqueues, the other is told the dead letter is busy (or gone)
    await new Promise((r) => setTimeout(r, 300)) // the task is recorded as done just after compensate returns
    const both = await Promise.all([1, 2].map(() => call(`/queues/${HELD_QUEUE}/dead-letters/held-1/retry`, { method: "POST" })))
    expect([[202, 404], [202, 409]]).toContainEqual(both.map((r) => r.status).sort())
  })

  it("discards one: it is gone afterwards", async () => {
    const r = await call(`/queues/${QUEUE}/dead-letters/job-d`, { method: "DELETE" })
    expect(r.status).toBe(204)
    expect(r.text).toBe("")
    const get = await call(`/queues/${QUEUE}/dead-letters/job-d`)
    expect(get.status).toBe(404)
    expectEnvelope(get.body, "NOT_FOUND")
    expect((await call(`/queues/${QUEUE}/dead-letters/job-d`, { method: "DELETE" })).status).toBe(404)
    const list = await call(`/queues/${QUEUE}/dead-letters`)
    expect(list.body["total"]).toBe(JOB_IDS.length - 2)
    expect((list.body["items"] as Array<Body>).map((item) => item["jobId"])).not.toContain("job-d")
    expect(runs.get("job-d")).toBe(1)
  })

  it("503 without internals while Redis is down", async () => {
    const redis = await PrivateRedis.start()
    const down = await startApp(testEnv({ ROLE: "api", ADMIN_TOKEN: TOKEN, REDIS_PORT: String(redis.port) }), { jobHandlers: [handler] })
    try {
      // Used once while Redis is up: a BullMQ queue whose connection never finished initialising
      // waits for Redis instead of failing.
      const up = await fetch(down.url("/api/admin/queues"), { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(up.status).toBe(200)
      await redis.stop()
      for (const path of ["/queues", `/queues/${QUEUE}/dead-letters`, `/queues/${QUEUE}/dead-letters/job-a/retry`]) {
        const r = await fetch(down.url(`/api/admin${path}`), {
          method: path.endsWith("/retry") ? "POST" : "GET",
          headers: { authorization: `Bearer ${TOKEN}` }
        })
        const text = await r.text()
        expect(r.status, path).toBe(503)
        expectEnvelope(JSON.parse(text) as Body, "SERVICE_UNAVAILABLE")
        expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Connection|stream|offline/i)
      }
    } finally {
      await down.close()
      await redis.stop()
    }
  })

  it("documents the admin endpoints and their bearer security in OpenAPI", async () => {
    const spec = (await (await fetch(app.url("/openapi.json"))).json()) as Body
    expect(Object.keys(spec["paths"] as Body)).toEqual(
      expect.arrayContaining([
        "/api/admin/queues",
        "/api/admin/queues/{queue}/dead-letters",
        "/api/admin/queues/{queue}/dead-letters/{jobId}",
        "/api/admin/queues/{queue}/dead-letters/{jobId}/retry"
      ])
    )
    expect(spec["components"]["securitySchemes"]).toMatchObject({ bearer: { type: "http", scheme: "bearer" } })
    expect(spec["paths"]["/api/admin/queues"]["get"]["security"]).toEqual([{ bearer: [] }])
  })
})
