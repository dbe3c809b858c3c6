import { execFileSync } from "node:child_process"
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Duration, Effect, Schema } from "effect"
import { Redis as IORedis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fileArg, Ffmpeg } from "../../src/services/platform/Ffmpeg.js"
import { defineJob } from "../../src/services/jobs/JobDefinition.js"
import { JobPermanent, JobRateLimited } from "../../src/services/jobs/JobError.js"
import { type AnyJobHandler, progressChannel } from "../../src/workers/jobs/runtime.js"
import { eventually, type JobHarness, startJobs } from "../support/jobHarness.js"
import { PrivateRedis } from "../support/redisServer.js"

const Payload = Schema.Struct({ n: Schema.Number, userId: Schema.optional(Schema.String) })
const def = (queue: string, timeout: Duration.DurationInput = "10 seconds", concurrency = 2) =>
  defineJob({ queue, payload: Payload, timeout, concurrency, userIdOf: (p) => p.userId })

const starts = new Map<string, Array<number>>()
const compensations = new Map<string, number>()
const pids = new Map<string, Array<number>>()
const record = (jobId: string) => {
  const list = starts.get(jobId) ?? []
  list.push(Date.now())
  starts.set(jobId, list)
  return list.length
}
const compensate = (_payload: unknown, failure: { readonly jobId: string }) =>
  Effect.sync(() => void compensations.set(failure.jobId, (compensations.get(failure.jobId) ?? 0) + 1))

const resetError = () => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })

const handlers: Array<AnyJobHandler> = [
  {
    definition: def("flaky"),
    run: (_p, ctx) => Effect.suspend(() => (record(ctx.jobId) <= 2 ? Effect.fail(resetError()) : Effect.succeed("done"))),
    compensate
  },
  {
    definition: def("broken"),
    run: (_p, ctx) => Effect.suspend(() => {
      record(ctx.jobId)
      return Effect.fail(new JobPermanent({ reason: "unsupported media" }))
    }),
    compensate
  },
  {
    definition: def("limited"),
    run: (p, ctx) => Effect.suspend(() => {
      const n = record(ctx.jobId)
      // n = 99: always rate limited; otherwise twice, then success.
      return p.n === 99 || n <= 2
        ? Effect.fail(new JobRateLimited({ reason: "upstream 429", retryAfter: Duration.millis(1500) }))
        : Effect.succeed("ok")
    }),
    compensate
  },
  {
    definition: def("slowpoke", "700 millis"),
    run: (_p, ctx) =>
      Effect.gen(function*() {
        record(ctx.jobId)
        const ffmpeg = yield* Ffmpeg
        const dir = yield* ffmpeg.tempDir
        yield* ffmpeg.run(
          (command) =>
            command.input("testsrc=duration=600:size=160x120:rate=25").inputFormat("lavfi").inputOptions("-re")
              .output(fileArg(`${dir}/out.mp4`)).videoCodec("libx264").outputOptions("-preset", "ultrafast"),
          { onStart: (pid) => Effect.sync(() => pids.set(ctx.jobId, [...(pids.get(ctx.jobId) ?? []), pid])) }
        )
      }).pipe(Effect.scoped),
    compensate
  },
  {
    definition: def("counted"),
    run: (_p, ctx) => Effect.sync(() => record(ctx.jobId))
  },
  {
    definition: def("reporter"),
    run: (_p, ctx) => ctx.progress(50, { stage: "halfway" }).pipe(Effect.zipRight(ctx.progress(100, { stage: "done" })))
  }
]
const byQueue = (queue: string) => handlers.find((h) => h.definition.queue === queue)!.definition

const stateOf = (h: JobHarness, queue: string, jobId: string) =>
  h.inspect(queue).getJob(jobId).then((job) => job?.getState())

describe("job system on real Redis and real workers", () => {
  let h: JobHarness
  beforeAll(async () => {
    h = await startJobs({
      JOB_TRANSIENT_BASE_DELAY: "400",
      JOB_TRANSIENT_ATTEMPTS: "5",
      JOB_TIMEOUT_RETRY_DELAY: "300",
      JOB_TIMEOUT_ATTEMPTS: "2",
      JOB_RATE_LIMIT_MIN_DELAY: "100",
      JOB_RATE_LIMIT_MAX_TIMES: "3"
    }, handlers)
  })
  afterAll(() => h?.close())

  it("a transient failure twice then success: 3 attempts, gaps on the schedule within jitter, one completion", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("flaky"), "flaky-1", { n: 1 }))
    await eventually(async () => (await stateOf(h, "flaky", "flaky-1")) === "completed", 10_000, "completion")
    const times = starts.get("flaky-1")!
    expect(times).toHaveLength(3)
    const gaps = [times[1]! - times[0]!, times[2]! - times[1]!]
    // Nominal 400 ms then 800 ms, jittered by +-20%; plus at most ~300 ms of BullMQ's delayed-job pickup.
    expect(gaps[0]).toBeGreaterThanOrEqual(320)
    expect(gaps[0]).toBeLessThanOrEqual(480 + 300)
    expect(gaps[1]).toBeGreaterThanOrEqual(640)
    expect(gaps[1]).toBeLessThanOrEqual(960 + 300)
    const job = await h.inspect("flaky").getJob("flaky-1")
    expect(job?.attemptsMade).toBe(3)
    expect(compensations.get("flaky-1")).toBeUndefined()
    const deadLetters = await Effect.runPromise(h.queues.deadLetters.list("flaky", { offset: 0, limit: 10 }))
    expect(deadLetters.total).toBe(0)
  })

  it("a permanent failure: one attempt, one dead letter with class and reason, compensation exactly once even when the failure is delivered twice", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("broken"), "broken-1", { n: 1 }))
    const letter = await eventually(() => Effect.runPromise(Effect.option(h.queues.deadLetters.get("broken", "broken-1"))).then((o) => (o._tag === "Some" ? o.value : undefined)), 5_000, "dead letter")
    expect(letter).toMatchObject({ jobId: "broken-1", jobClass: "permanent", payload: { n: 1 }, attemptsMade: 1 })
    expect(letter.reason).toContain("permanent")
    expect(letter.lastError.message).toContain("unsupported media")
    expect(starts.get("broken-1")).toHaveLength(1)
    // compensation is its own step, right after the dead letter
    expect(await eventually(async () => compensations.get("broken-1"), 5_000, "compensation")).toBe(1)
    // The same job delivered again (as after a crash between its failure and its acknowledgement):
    // only the failure path repeats, the handler does not run and nothing is compensated twice.
    await (await h.inspect("broken").getJob("broken-1"))!.retry("failed")
    await eventually(async () => (await stateOf(h, "broken", "broken-1")) === "failed" || undefined, 5_000, "second failure")
    await new Promise((r) => setTimeout(r, 500))
    expect(starts.get("broken-1")).toHaveLength(1)
    expect(compensations.get("broken-1")).toBe(1)
    expect((await Effect.runPromise(h.queues.deadLetters.list("broken", { offset: 0, limit: 10 }))).total).toBe(1)
    // A later job under the same id (the old one gone) is a job of its own: it runs, fails and is compensated.
    await (await h.inspect("broken").getJob("broken-1"))!.remove()
    await Effect.runPromise(h.queues.enqueue(byQueue("broken"), "broken-1", { n: 1 }))
    expect(await eventually(async () => (compensations.get("broken-1") === 2 ? 2 : undefined), 5_000, "second compensation")).toBe(2)
    expect(starts.get("broken-1")).toHaveLength(2)
    expect((await Effect.runPromise(h.queues.deadLetters.list("broken", { offset: 0, limit: 10 }))).total).toBe(1)
  })

  it("a rate-limited failure waits retryAfter without consuming attempts", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("limited"), "limited-1", { n: 1 }))
    await eventually(async () => (await stateOf(h, "limited", "limited-1")) === "completed", 10_000, "completion")
    const times = starts.get("limited-1")!
    expect(times).toHaveLength(3)
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1_450)
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(1_450)
    const job = await h.inspect("limited").getJob("limited-1")
    expect(job?.attemptsMade).toBe(1) // only the successful attempt counted
    expect(job?.attemptsStarted).toBe(3)
  }, 15_000)

  it("rate limited past the cap goes to the dead letters", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("limited"), "limited-cap", { n: 99 }))
    const letter = await eventually(() => Effect.runPromise(Effect.option(h.queues.deadLetters.get("limited", "limited-cap"))).then((o) => (o._tag === "Some" ? o.value : undefined)), 12_000, "dead letter")
    expect(letter.jobClass).toBe("rate_limited")
    expect(starts.get("limited-cap")).toHaveLength(4) // 3 postponements allowed, the 4th start ends it
    expect(compensations.get("limited-cap")).toBe(1)
  }, 15_000)

  it("a job over its timeout: its ffmpeg child is killed, class timeout, retried per its schedule, then dead-lettered", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("slowpoke"), "slow-1", { n: 1 }))
    const letter = await eventually(() => Effect.runPromise(Effect.option(h.queues.deadLetters.get("slowpoke", "slow-1"))).then((o) => (o._tag === "Some" ? o.value : undefined)), 10_000, "dead letter")
    expect(letter.jobClass).toBe("timeout")
    expect(starts.get("slow-1")).toHaveLength(2)
    const started = pids.get("slow-1")!
    expect(started).toHaveLength(2)
    for (const pid of started) {
      expect(() => process.kill(pid, 0)).toThrow()
    }
    expect(execFileSync("ps", ["-eo", "pid,args"]).toString()).not.toMatch(/testsrc=duration=600/)
  }, 15_000)

  it("the same job id enqueued 10 times concurrently makes one job", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => Effect.runPromise(h.queues.enqueue(byQueue("counted"), "same-id", { n: 1 })))
    )
    expect(new Set(results.map((r) => r.jobId))).toEqual(new Set(["same-id"]))
    await eventually(async () => (await stateOf(h, "counted", "same-id")) === "completed", 5_000, "completion")
    await new Promise((r) => setTimeout(r, 300))
    expect(starts.get("same-id")).toHaveLength(1)
    const counts = await h.inspect("counted").getJobCounts("completed", "waiting", "active", "delayed")
    expect(counts["completed"]).toBe(1)
  })

  it("progress is stored on the job and published on the user's channel", async () => {
    const subscriber = new IORedis({ host: "127.0.0.1", port: 6379 })
    const messages: Array<Record<string, unknown>> = []
    const channel = progressChannel(h.config.redis.keyPrefix, "user-42")
    await subscriber.subscribe(channel)
    subscriber.on("message", (_c, message) => messages.push(JSON.parse(message) as Record<string, unknown>))
    await Effect.runPromise(h.queues.enqueue(byQueue("reporter"), "progress-1", { n: 1, userId: "user-42" }))
    await eventually(async () => messages.length >= 2 || undefined, 5_000, "progress messages")
    expect(messages[0]).toMatchObject({ type: "progress", queue: "reporter", jobId: "progress-1", percent: 50, stage: "halfway" })
    const job = await h.inspect("reporter").getJob("progress-1")
    expect(job?.progress).toMatchObject({ percent: 100, stage: "done" })
    await subscriber.quit()
  })

  it("a payload that does not decode is a permanent failure, never a crash", async () => {
    await h.inspect("counted").add("counted", { n: "not a number" }, { jobId: "bad-payload", attempts: 6 })
    const letter = await eventually(() => Effect.runPromise(Effect.option(h.queues.deadLetters.get("counted", "bad-payload"))).then((o) => (o._tag === "Some" ? o.value : undefined)), 5_000, "dead letter")
    expect(letter).toMatchObject({ jobClass: "permanent", attemptsMade: 1 })
    expect(starts.get("bad-payload")).toBeUndefined()
  })

  it("the detailed counts cover each queue and its dead letters", async () => {
    const counts = await Effect.runPromise(h.queues.counts)
    expect(counts["broken"]).toMatchObject({ deadLettered: 1, failed: 1 })
    expect(Object.keys(counts).sort()).toEqual(["broken", "counted", "flaky", "limited", "reporter", "slowpoke"])
  })
})

describe("job system operations", () => {
  it("warns loudly at startup when Redis may evict keys, and bounds kept jobs by count", async () => {
    const redis = await PrivateRedis.start(["--maxmemory-policy", "allkeys-lru"])
    const h = await startJobs({ REDIS_PORT: String(redis.port), JOB_KEEP_COMPLETED_COUNT: "2" }, [handlers.find((x) => x.definition.queue === "counted")!])
    try {
      const warning = h.logs().find((l) => String(l["msg"]).includes("maxmemory-policy is not noeviction"))
      expect(warning).toMatchObject({ level: 50, policy: "allkeys-lru" })
      for (let i = 0; i < 6; i++) await Effect.runPromise(h.queues.enqueue(byQueue("counted"), `keep-${i}`, { n: i }))
      await eventually(async () => ((await h.inspect("counted").getJobCounts("completed", "waiting", "active"))["waiting"] === 0 ? true : undefined), 5_000, "drained")
      await new Promise((r) => setTimeout(r, 300))
      const completed = (await h.inspect("counted").getJobCounts("completed"))["completed"]
      expect(completed).toBeLessThanOrEqual(2)
      expect(["keep-0", "keep-1", "keep-2", "keep-3", "keep-4", "keep-5"].filter((id) => (starts.get(id)?.length ?? 0) === 1)).toHaveLength(6)
    } finally {
      await h.close()
      await redis.stop()
    }
  })
})

/**
 * The real (npm-bundled) ffmpeg behind a wrapper whose filter list lacks blend, one of the filters the apps require:
 * the refusal is exercised on every machine, also where the system ffmpeg is new (CI's Debian ffmpeg).
 */
const ffmpegWithoutBlend = (dir: string) => {
  const real = (createRequire(import.meta.url)("@ffmpeg-installer/ffmpeg") as { path: string }).path
  const script = path.join(dir, "ffmpeg")
  writeFileSync(script, [
    "#!/bin/sh",
    "for arg in \"$@\"; do",
    "  if [ \"$arg\" = \"-filters\" ]; then",
    `    \"${real}\" \"$@\" | grep -v ' blend '`,
    "    exit 0",
    "  fi",
    "done",
    `exec \"${real}\" \"$@\"`
  ].join("\n") + "\n")
  chmodSync(script, 0o755)
  return script
}

describe("a job needing an ffmpeg capability this build lacks", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "lumiku-ffmpeg-wrapper-"))
  const rendered: Array<number> = []
  let h: JobHarness
  const crossfade: AnyJobHandler = {
    definition: def("crossfade-loop"),
    run: (_p, ctx) =>
      Effect.gen(function*() {
        record(ctx.jobId)
        const ffmpeg = yield* Ffmpeg
        yield* ffmpeg.require(["blend", "libx264"])
        const out = path.join(yield* ffmpeg.tempDir, "loop.mp4")
        yield* ffmpeg.run(
          (command) =>
            command.input("testsrc=duration=2:size=160x120:rate=25").inputFormat("lavfi")
              .input("testsrc=duration=2:size=160x120:rate=25").inputFormat("lavfi")
              .complexFilter("[0:v][1:v]blend=all_expr=A*(1-T/2)+B*T/2[v]").outputOptions("-map", "[v]")
              .output(fileArg(out)).videoCodec("libx264"),
          { onStart: (pid) => Effect.sync(() => void rendered.push(pid)) }
        )
      }).pipe(Effect.scoped),
    compensate
  }
  beforeAll(async () => {
    h = await startJobs({ FFMPEG_PATH: ffmpegWithoutBlend(dir), JOB_TRANSIENT_BASE_DELAY: "200" }, [crossfade])
  })
  afterAll(async () => {
    await h?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("startup reports the missing filter; the job is dead-lettered as permanent after one attempt, before ffmpeg runs", async () => {
    const warning = h.logs().find((l) => String(l["msg"]).includes("lacks blend"))
    expect(warning).toMatchObject({ missing: ["blend"] })
    await Effect.runPromise(h.queues.enqueue(crossfade.definition, "blend-1", { n: 1 }))
    const letter = await eventually(() => Effect.runPromise(Effect.option(h.queues.deadLetters.get("crossfade-loop", "blend-1"))).then((o) => (o._tag === "Some" ? o.value : undefined)), 10_000, "dead letter")
    expect(letter).toMatchObject({ jobClass: "permanent", attemptsMade: 1, lastError: { tag: "JobPermanent" } })
    expect(letter.lastError.message).toContain("ffmpeg lacks blend, which the job needs")
    expect(starts.get("blend-1")).toHaveLength(1)
    expect(rendered).toEqual([])
    // compensation runs right after the dead letter is written
    expect(await eventually(async () => compensations.get("blend-1"), 5_000, "compensation")).toBe(1)
  }, 20_000)
})
