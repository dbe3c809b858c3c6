import { Context, Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { MetricsServer } from "../../src/http/platform/metricsRoute.js"
import { defineJob } from "../../src/services/jobs/JobDefinition.js"
import { JobPermanent } from "../../src/services/jobs/JobError.js"
import { JobQueues } from "../../src/services/jobs/JobQueues.js"
import type { AnyJobHandler } from "../../src/workers/jobs/runtime.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { productionEnv, testEnv } from "../support/env.js"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { parseScrape, type Scrape } from "../support/prometheus.js"

const Payload = Schema.Struct({ fail: Schema.Boolean })
const run = `${process.pid}-${Date.now()}`
const queue = `metrics-${run}`
const Job = defineJob({ queue, payload: Payload, timeout: "10 seconds", concurrency: 2 })
const handler: AnyJobHandler = {
  definition: Job,
  run: (payload: typeof Payload.Type) => payload.fail ? Effect.fail(new JobPermanent({ reason: "asked to fail" })) : Effect.void
}

const TOKEN = "metrics-token-for-the-test-0123456789"

const scrape = async (app: InProcessApp, headers: Record<string, string> = bearer(TOKEN)): Promise<Scrape> => {
  const response = await fetch(app.url("/metrics"), { headers })
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toContain("text/plain")
  return parseScrape(await response.text())
}

const enqueue = (app: InProcessApp, jobId: string, fail: boolean) =>
  Effect.runPromise(Effect.flatMap(JobQueues, (q) => q.enqueue(Job, jobId, { fail })).pipe(Effect.provide(app.context)))

describe("GET /metrics on the main port", () => {
  let app: InProcessApp
  beforeAll(async () => {
    // Its own Redis prefix: the per-address limits (register, health) would otherwise share their counters
    // with every other file of the run, and this test counts its 429s exactly.
    app = await startApp(
      testEnv({
        ROLE: "all",
        METRICS_TOKEN: TOKEN,
        HEALTH_RATE_LIMIT_PER_MINUTE: "2",
        RATE_LIMIT_REGISTER: "1000 per 1 minute",
        REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}metrics:`
      }),
      { jobHandlers: [handler] }
    )
  })
  afterAll(() => app?.close())

  it("refuses a scrape without the token, or with another, in the one error body", async () => {
    for (const headers of [{}, bearer("not-the-token"), { authorization: `Basic ${TOKEN}` }]) {
      const response = await fetch(app.url("/metrics"), { headers })
      expect(response.status).toBe(401)
      const body = (await response.json()) as Record<string, unknown>
      expect(body).toMatchObject({ success: false, code: "UNAUTHORIZED" })
      expect(body.error).toBe(body.message)
      expect(typeof body.requestId).toBe("string")
    }
  })

  it("counts requests by route template and status, jobs by outcome and class, ledger operations and rate-limit rejections, exactly", async () => {
    const before = await scrape(app)
    // Node-level probes, a templated route with a parameter, an unknown route, an authenticated route.
    for (let i = 0; i < 3; i++) expect((await fetch(app.url("/health/liveness"))).status).toBe(200)
    const registered = await call(app, "POST", "/api/auth/register", { email: freshEmail("metrics"), password: "Correct-Horse-42!" })
    expect(registered.status).toBe(201)
    const token = registered.body.data.token as string
    for (let i = 0; i < 2; i++) expect((await call(app, "GET", "/api/credits/balance", undefined, bearer(token))).status).toBe(200)
    expect((await call(app, "GET", `/api/generations/${crypto.randomUUID()}/nope`)).status).toBe(404)
    // The detailed health report: 2 per minute, so the third is refused.
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await call(app, "GET", "/api/health")).status)
    expect(statuses.filter((s) => s === 429)).toHaveLength(1)
    // Two jobs that complete, one that fails for good.
    await enqueue(app, `ok-1-${run}`, false)
    await enqueue(app, `ok-2-${run}`, false)
    await enqueue(app, `bad-${run}`, true)
    let after = before
    await waitUntil(async () => {
      after = await scrape(app)
      return after.value("jobs_dead_lettered_total", { queue }) === 1 &&
        after.count("job_duration_seconds", { queue, outcome: "completed" }) === 2
    }, 15_000)

    const delta = (f: (s: Scrape) => number) => f(after) - f(before)
    const requests = (labels: Record<string, string>) => delta((s) => s.count("http_request_duration_seconds", labels))
    expect(requests({ method: "GET", route: "/health/liveness", status: "200" })).toBe(3)
    expect(requests({ method: "GET", route: "/api/credits/balance", status: "200" })).toBe(2)
    expect(requests({ method: "POST", route: "/api/auth/register", status: "201" })).toBe(1)
    expect(requests({ method: "GET", route: "unmatched", status: "404" })).toBe(1)
    expect(requests({ method: "GET", route: "/api/health", status: "429" })).toBe(1)
    // No raw path becomes a label.
    const routes = new Set(after.labelSets("http_request_duration_seconds_count").map((labels) => labels["route"]))
    expect(routes.has("/health/liveness")).toBe(true)
    for (const route of routes) expect(route).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}/)

    expect(delta((s) => s.value("rate_limit_rejections_total", { policy: "health" }))).toBe(1)
    expect(delta((s) => s.value("ledger_operations_total", { operation: "credit", outcome: "ok" }))).toBe(1)
    expect(after.count("job_duration_seconds", { queue, outcome: "completed", error_class: "none" })).toBe(2)
    expect(after.count("job_duration_seconds", { queue, outcome: "failed", error_class: "permanent" })).toBe(1)
    expect(after.value("jobs_dead_lettered_total", { queue, error_class: "permanent" })).toBe(1)
    // Queue depths are read from Redis at each scrape.
    await waitUntil(async () => (await scrape(app)).value("job_queue_depth", { queue, state: "dead_lettered" }) === 1, 10_000)
    expect((await scrape(app)).value("job_queue_depth", { queue, state: "waiting" })).toBe(0)
    // Read at scrape time: this scrape itself is in flight; memory and event-loop delay are there.
    expect(after.value("http_requests_in_flight")).toBeGreaterThanOrEqual(1)
    expect(after.value("process_memory_bytes", { kind: "rss" })).toBeGreaterThan(10_000_000)
    expect(after.labelSets("nodejs_eventloop_delay_seconds").map((l) => l["quantile"]).sort()).toEqual(["max", "p50", "p99"])
  })
})

describe("GET /metrics on METRICS_PORT", () => {
  let app: InProcessApp
  let port: number
  beforeAll(async () => {
    app = await startApp(testEnv({ ROLE: "api", METRICS_PORT: "0" }))
    port = Context.get(app.context as unknown as Context.Context<MetricsServer>, MetricsServer).port
  })

  it("is served on its own listener only, and the listener is closed at shutdown", async () => {
    expect((await fetch(app.url("/metrics"))).status).toBe(404)
    const response = await fetch(`http://127.0.0.1:${port}/metrics`)
    expect(response.status).toBe(200)
    const parsed = parseScrape(await response.text())
    expect(parsed.value("process_memory_bytes", { kind: "heap_used" })).toBeGreaterThan(0)
    const other = await fetch(`http://127.0.0.1:${port}/api/credits/balance`)
    expect(other.status).toBe(404)
    expect(await other.json()).toMatchObject({ success: false, code: "NOT_FOUND" })
    await app.close()
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow()
  })
})

describe("metrics access in production", () => {
  const problems = (env: Record<string, string>) =>
    Effect.runPromise(Effect.match(appConfigFrom(env), { onSuccess: () => [] as ReadonlyArray<string>, onFailure: (e) => e.problems }))
  const { METRICS_TOKEN: _token, ...withoutToken } = productionEnv

  it("refuses a public /metrics on the main port; accepts a token, or its own port", async () => {
    expect(await problems(withoutToken)).toEqual(["METRICS_TOKEN is required in production while /metrics is served on PORT (or set METRICS_PORT)"])
    expect(await problems({ ...withoutToken, METRICS_TOKEN: "short" })).toEqual(["METRICS_TOKEN must be at least 32 characters in production"])
    expect(await problems(productionEnv)).toEqual([])
    expect(await problems({ ...withoutToken, METRICS_PORT: "9464" })).toEqual([])
  })
})
