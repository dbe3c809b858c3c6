import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { defineJob } from "../../src/services/jobs/JobDefinition.js"
import { JobQueues } from "../../src/services/jobs/JobQueues.js"
import { Redis } from "../../src/services/platform/Redis.js"
import type { AnyJobHandler } from "../../src/workers/jobs/runtime.js"
import { testEnv } from "../support/env.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"

const queue = `traced-${process.pid}-${Date.now()}`
const Job = defineJob({ queue, payload: Schema.Struct({ n: Schema.Number }), timeout: "10 seconds", concurrency: 1 })
const done = new Set<string>()
const handler: AnyJobHandler = {
  definition: Job,
  run: (_payload, context) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`SELECT 1 AS traced_in_job`
      const redis = yield* Redis
      yield* redis.use("ping", (c) => c.ping())
      done.add(context.jobId)
    })
}

const spanOf = (spans: ReadonlyArray<ReadableSpan>, predicate: (s: ReadableSpan) => boolean) => {
  const found = spans.find(predicate)
  if (found === undefined) throw new Error(`no such span among ${spans.map((s) => s.name).join(", ")}`)
  return found
}

describe("traces with an exporter (the SDK's in-memory exporter standing in for OTLP)", () => {
  const exporter = new InMemorySpanExporter()
  let app: InProcessApp
  beforeAll(async () => {
    const extraRoutes = HttpApiBuilder.Router.use((router) =>
      Effect.flatMap(JobQueues, (queues) =>
        router.post("/__trace/:id", Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const id = request.url.split("/").pop()!
          yield* queues.enqueue(Job, id, { n: 1 }).pipe(Effect.orDie)
          return HttpServerResponse.unsafeJson({ enqueued: id })
        })))
    )
    app = await startApp(testEnv({ ROLE: "all" }), { extraRoutes, jobHandlers: [handler], spanProcessor: new SimpleSpanProcessor(exporter) })
  })
  afterAll(() => app?.close())

  it("one trace runs from the HTTP request through the enqueue into the job, its SQL and its Redis calls", async () => {
    const jobId = `job-${Date.now()}`
    const response = await fetch(app.url(`/__trace/${jobId}`), { method: "POST" })
    expect(response.status).toBe(200)
    await waitUntil(async () => done.has(jobId) && exporter.getFinishedSpans().some((s) => s.name === `job ${queue}`), 15_000)
    const spans = exporter.getFinishedSpans()
    const server = spanOf(spans, (s) => s.kind === 1 && s.name.includes("POST"))
    const job = spanOf(spans, (s) => s.name === `job ${queue}`)
    const traceId = server.spanContext().traceId
    expect(job.spanContext().traceId).toBe(traceId)
    expect(job.attributes["messaging.message.id"]).toBe(jobId)
    // The job's span is a child of a span of the request's trace (the request's own span or one inside it).
    const requestSpanIds = new Set(spans.filter((s) => s.spanContext().traceId === traceId).map((s) => s.spanContext().spanId))
    expect(requestSpanIds.has(job.parentSpanContext?.spanId ?? "")).toBe(true)
    const jobSpanId = job.spanContext().spanId
    const inJob = spans.filter((s) => s.parentSpanContext?.spanId === jobSpanId)
    expect(inJob.some((s) => s.name === "sql.execute" && String(s.attributes["db.statement"] ?? s.attributes["db.query.text"] ?? "").includes("traced_in_job"))).toBe(true)
    expect(inJob.some((s) => s.name === "redis ping")).toBe(true)
  })

  it("a probe makes no span", async () => {
    const before = exporter.getFinishedSpans().length
    expect((await fetch(app.url("/health/liveness"))).status).toBe(200)
    expect((await fetch(app.url("/health/readiness"), { headers: { origin: "http://localhost:5173" } })).status).toBe(200)
    const after = exporter.getFinishedSpans().slice(before)
    expect(after.filter((s) => s.kind === 1)).toEqual([])
  })
})
