import { Cause, Duration, Effect, Either, Exit, Layer, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { makeJobQueuesLive } from "../../src/layers/jobs/JobQueuesLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { Redis, type RedisShape } from "../../src/services/platform/Redis.js"
import { defineJob, type JobDefinition } from "../../src/services/jobs/JobDefinition.js"
import { JobPermanent, JobTransient } from "../../src/services/jobs/JobError.js"
import type { AnyJobHandler, FinalFailure } from "../../src/workers/jobs/runtime.js"
import { testEnv } from "../support/env.js"
import { eventually, type JobHarness, startJobs } from "../support/jobHarness.js"
import { TcpProxy } from "../support/tcpProxy.js"

/**
 * The failure path under failures: compensation that fails, hangs or is interrupted, jobs that end
 * for good in every way there is, admin calls that race, and Redis going away mid-path.
 */

const Payload = Schema.Struct({ n: Schema.Number })
const def = (queue: string, timeout: Duration.DurationInput = "5 seconds", concurrency = 2) =>
  defineJob({ queue, payload: Payload, timeout, concurrency })

const runs = new Map<string, number>()
const compensations = new Map<string, number>()
const bump = (map: Map<string, number>, key: string) => {
  const n = (map.get(key) ?? 0) + 1
  map.set(key, n)
  return n
}
const counted = (_payload: unknown, failure: FinalFailure) => Effect.sync(() => void bump(compensations, failure.jobId))
const resetError = () => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })

/** A promise a test resolves by hand. */
const latch = () => {
  let open: () => void = () => undefined
  const promise = new Promise<void>((resolve) => (open = resolve))
  return { promise, open }
}
const compensationGate = latch()
let compensationStarted = false
const heldGate = latch()
const undecodable: Array<{ encoded: unknown; failure: FinalFailure }> = []
// Per-job scripts of the "classes" handler: what each run does.
const scripts: Record<string, ReadonlyArray<"transient" | "timeout" | "ok">> = {
  "classes-1": ["transient", "transient", "timeout", "ok"]
}

const handlers: Array<AnyJobHandler> = [
  {
    definition: def("comp-fails"),
    run: (_p, ctx) => Effect.suspend(() => (bump(runs, ctx.jobId), Effect.fail(new JobPermanent({ reason: "refused" })))),
    compensate: (_p, failure) => Effect.suspend(() => (bump(compensations, failure.jobId), Effect.fail(resetError())))
  },
  {
    definition: def("comp-hangs", "5 seconds", 1),
    run: (p, ctx) => Effect.suspend(() => (bump(runs, ctx.jobId), p.n === 1 ? Effect.fail(new JobPermanent({ reason: "refused" })) : Effect.void)),
    // hung for good, and deaf to interruption
    compensate: (_p, failure) => Effect.suspend(() => (bump(compensations, failure.jobId), Effect.uninterruptible(Effect.never)))
  },
  {
    definition: def("reused"),
    run: (_p, ctx) => Effect.suspend(() => (bump(runs, ctx.jobId), Effect.fail(new JobPermanent({ reason: "refused" })))),
    compensate: counted
  },
  {
    // fails its first run only
    definition: def("racing"),
    run: (_p, ctx) => Effect.suspend(() => (bump(runs, ctx.jobId) === 1 ? Effect.fail(new JobPermanent({ reason: "refused" })) : Effect.void)),
    compensate: counted
  },
  {
    definition: def("comp-slow"),
    run: (_p, ctx) => Effect.suspend(() => (bump(runs, ctx.jobId), Effect.fail(new JobPermanent({ reason: "refused" })))),
    compensate: (p, failure) =>
      Effect.sync(() => (compensationStarted = true)).pipe(
        Effect.zipRight(Effect.promise(() => compensationGate.promise)),
        Effect.zipRight(counted(p, failure))
      )
  },
  {
    definition: def("schema-changed"),
    run: (_p, ctx) => Effect.sync(() => void bump(runs, ctx.jobId)),
    compensate: counted,
    compensateUndecodable: (encoded, failure) => Effect.sync(() => void undecodable.push({ encoded, failure }))
  },
  {
    definition: def("always-transient"),
    run: (_p, ctx) => Effect.suspend(() => (bump(runs, ctx.jobId), Effect.fail(resetError()))),
    compensate: counted
  },
  {
    definition: def("self-interrupted"),
    run: (_p, ctx) => Effect.suspend(() => (bump(runs, ctx.jobId), Effect.interrupt)),
    compensate: counted
  },
  {
    definition: def("classes", "300 millis"),
    run: (_p, ctx) =>
      Effect.suspend(() => {
        const step = scripts[ctx.jobId]?.[bump(runs, ctx.jobId) - 1] ?? "ok"
        return step === "transient" ? Effect.fail(resetError()) : step === "timeout" ? Effect.never : Effect.void
      }),
    compensate: counted
  },
  {
    definition: def("held"),
    run: (_p, ctx) => Effect.promise(() => heldGate.promise).pipe(Effect.zipRight(Effect.sync(() => void bump(runs, ctx.jobId))))
  },
  {
    definition: def("plain"),
    run: (_p, ctx) => Effect.sync(() => void bump(runs, ctx.jobId))
  }
]
const byQueue = (queue: string) => handlers.find((h) => h.definition.queue === queue)!.definition as JobDefinition<{ readonly n: number }, { readonly n: number }>

const letterOf = (h: JobHarness, queue: string, jobId: string) =>
  Effect.runPromise(Effect.option(h.queues.deadLetters.get(queue, jobId))).then((o) => (o._tag === "Some" ? o.value : undefined))
const stateOf = (h: JobHarness, queue: string, jobId: string) => h.inspect(queue).getJob(jobId).then((job) => job?.getState())
/** The newest compensation task of a job id (one per enqueue). */
const compensationTaskOf = async (h: JobHarness, queue: string, jobId: string) => {
  const tasks = await h.inspect(`${queue}-compensate`).getJobs(["waiting", "active", "delayed", "completed", "failed"])
  return tasks.filter((t) => t !== undefined && (t.data as { jobId: string }).jobId === jobId).sort((a, b) => b.timestamp - a.timestamp)[0]
}
const compensationStateOf = (h: JobHarness, queue: string, jobId: string) => compensationTaskOf(h, queue, jobId).then((task) => task?.getState())
/** Compensated once, and (where compensation has its own task) the task recorded as done. */
const compensatedOnce = async (h: JobHarness, queue: string, jobId: string) =>
  compensations.get(jobId) === 1 && ["completed", undefined].includes(await compensationStateOf(h, queue, jobId)) ? true : undefined
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const fastRetries = {
  JOB_TRANSIENT_BASE_DELAY: "100",
  JOB_TRANSIENT_ATTEMPTS: "3",
  JOB_TIMEOUT_RETRY_DELAY: "100",
  JOB_TIMEOUT_ATTEMPTS: "2",
  JOB_COMPENSATION_TIMEOUT: "500",
  JOB_COMPENSATION_ATTEMPTS: "3"
}

describe("the failure path is its own durable step", () => {
  let h: JobHarness
  beforeAll(async () => {
    h = await startJobs(fastRetries, handlers)
  })
  afterAll(() => h?.close())

  it("a compensation that always fails is retried on its own, up to its attempts; the handler runs once", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("comp-fails"), "cf-1", { n: 1 }))
    await eventually(async () => h.logs().some((l) => l["msg"] === "compensation failed for good; it stays in the compensation queue for an operator" && l["jobId"] === "cf-1") || undefined, 10_000, "compensation given up")
    await sleep(500)
    expect(runs.get("cf-1")).toBe(1)
    expect(compensations.get("cf-1")).toBe(3)
    expect(await stateOf(h, "comp-fails", "cf-1")).toBe("failed")
    expect(await compensationStateOf(h, "comp-fails", "cf-1")).toBe("failed")
    expect(await letterOf(h, "comp-fails", "cf-1")).toMatchObject({ jobClass: "permanent", attemptsMade: 1 })
    // an operator sees it in the queue counts (the admin API and the detailed health report)
    expect((await Effect.runPromise(h.queues.counts))["comp-fails"]).toMatchObject({ deadLettered: 1, compensationFailed: 1, compensationPending: 0 })
  })

  it("a hung compensation is cut at its own time limit: the job is settled at once and the next job at concurrency 1 runs", async () => {
    const started = Date.now()
    await Effect.runPromise(h.queues.enqueue(byQueue("comp-hangs"), "hang-1", { n: 1 }))
    await Effect.runPromise(h.queues.enqueue(byQueue("comp-hangs"), "hang-2", { n: 2 }))
    // (the limit is 500 ms; the bound is generous for a loaded machine, and the hung run would never end)
    await eventually(async () => (await stateOf(h, "comp-hangs", "hang-2")) === "completed" || undefined, 5_000, "the next job")
    expect(await stateOf(h, "comp-hangs", "hang-1")).toBe("failed")
    expect(Date.now() - started).toBeLessThan(5_000)
    // each run of the compensation is interrupted at 500 ms and retried, 3 runs in all
    await eventually(async () => (await compensationStateOf(h, "comp-hangs", "hang-1")) === "failed" || undefined, 10_000, "compensation given up")
    expect(compensations.get("hang-1")).toBe(3)
    const job = await compensationTaskOf(h, "comp-hangs", "hang-1")
    expect(job?.failedReason).toMatch(/exceeded its 500 ms limit/)
  })

  it("a retried job, and a later job reusing the id, are compensated again when they fail; the compensation record expires", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("reused"), "re-1", { n: 1 }))
    await eventually(() => compensatedOnce(h, "reused", "re-1"), 5_000, "compensation")
    // retried: it fails again and is compensated again
    await Effect.runPromise(h.queues.deadLetters.retry("reused", "re-1"))
    await eventually(async () => (compensations.get("re-1") === 2 ? true : undefined), 5_000, "second compensation")
    expect(runs.get("re-1")).toBe(2)
    // discarded, the old job gone (as after its retention), and the id used again
    await eventually(async () => (await compensationStateOf(h, "reused", "re-1")) === "completed" || undefined, 5_000, "compensation recorded")
    await Effect.runPromise(h.queues.deadLetters.discard("reused", "re-1"))
    await (await h.inspect("reused").getJob("re-1"))!.remove()
    await Effect.runPromise(h.queues.enqueue(byQueue("reused"), "re-1", { n: 1 }))
    await eventually(async () => (compensations.get("re-1") === 3 ? true : undefined), 5_000, "third compensation")
    expect(runs.get("re-1")).toBe(3)
    // and the record of a compensation done expires with the completed jobs
    const task = await compensationTaskOf(h, "reused", "re-1")
    expect(task?.opts.removeOnComplete).toMatchObject({ age: Duration.toSeconds(h.config.jobs.keepCompleted.age) })
  })

  it("concurrent retries, and a retry racing a discard, give one outcome", async () => {
    const ids = ["race-0", "race-1", "race-2", "mix-0", "mix-1", "mix-2"]
    for (const id of ids) await Effect.runPromise(h.queues.enqueue(byQueue("racing"), id, { n: 1 }))
    for (const id of ids) await eventually(() => compensatedOnce(h, "racing", id), 5_000, `${id} compensated`)
    const outcomes = await Promise.all(ids.map((id) => {
      const retry = Effect.runPromise(Effect.either(h.queues.deadLetters.retry("racing", id)))
      const other = id.startsWith("race")
        ? Effect.runPromise(Effect.either(h.queues.deadLetters.retry("racing", id)))
        : Effect.runPromise(Effect.either(h.queues.deadLetters.discard("racing", id)))
      return Promise.all([retry, other])
    }))
    for (const [i, id] of ids.entries()) {
      const [retry, other] = outcomes[i]!
      const won = [retry, other].filter(Either.isRight)
      expect(won, id).toHaveLength(1)
      for (const lost of [retry, other].filter(Either.isLeft)) expect(["DeadLetterBusy", "DeadLetterNotFound"]).toContain(lost.left._tag)
      // a won retry runs the job once more (it succeeds now); a won discard runs nothing
      if (Either.isRight(retry)) await eventually(async () => (await stateOf(h, "racing", id)) === "completed" || undefined, 5_000, `${id} re-run`)
    }
    await sleep(500)
    for (const [i, id] of ids.entries()) {
      expect(runs.get(id), id).toBe(Either.isRight(outcomes[i]![0]) ? 2 : 1)
      expect(await letterOf(h, "racing", id)).toBeUndefined()
    }
  })

  it("retry and discard refuse while the compensation has not finished, then work", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("comp-slow"), "slow-1", { n: 1 }))
    await eventually(async () => compensationStarted || undefined, 5_000, "compensation running")
    for (const operation of [h.queues.deadLetters.retry("comp-slow", "slow-1"), h.queues.deadLetters.discard("comp-slow", "slow-1")]) {
      const result = await Effect.runPromise(Effect.either(operation))
      expect(Either.isLeft(result) && result.left._tag).toBe("DeadLetterBusy")
    }
    compensationGate.open()
    await eventually(() => compensatedOnce(h, "comp-slow", "slow-1"), 5_000, "compensation done")
    await Effect.runPromise(h.queues.deadLetters.discard("comp-slow", "slow-1"))
    expect(await letterOf(h, "comp-slow", "slow-1")).toBeUndefined()
    expect(compensations.get("slow-1")).toBe(1)
    expect(runs.get("slow-1")).toBe(1)
  })

  it("a dead letter whose job is locked by a worker cannot be retried: DeadLetterBusy (409), not an outage", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("held"), "held-1", { n: 1 }))
    await eventually(async () => (await stateOf(h, "held", "held-1")) === "active" || undefined, 5_000, "job running")
    // a dead letter under the id of a job that is running again (as after a delivery that raced its failure)
    const letter = {
      queue: "held", jobId: "held-1", payload: { n: 1 }, jobClass: "permanent" as const, reason: "permanent failure",
      lastError: { tag: "JobPermanent", message: "refused" }, attemptsMade: 1, attemptsStarted: 1,
      enqueuedAt: new Date().toISOString(), lastAttemptAt: null, deadLetteredAt: new Date().toISOString()
    }
    await Effect.runPromise(h.queues.deadLetters.record(letter, { compensate: false }))
    const result = await Effect.runPromise(Effect.either(h.queues.deadLetters.retry("held", "held-1")))
    expect(Either.isLeft(result) && result.left._tag).toBe("DeadLetterBusy")
    expect(Either.isLeft(result) && result.left.message).toContain("its job is locked by another worker")
    heldGate.open()
    await eventually(async () => (await stateOf(h, "held", "held-1")) === "completed" || undefined, 5_000, "job done")
    // the running job was left alone, and the dead letter is still there for the operator
    expect(runs.get("held-1")).toBe(1)
    expect(await letterOf(h, "held", "held-1")).toMatchObject({ jobId: "held-1" })
  })

  it("a payload that no longer decodes is dead-lettered and compensated with its encoded payload", async () => {
    await h.inspect("schema-changed").add("schema-changed", { n: "from an older schema" }, { jobId: "old-1", attempts: 20 })
    await eventually(async () => (undecodable.length === 1 ? true : undefined), 5_000, "compensation")
    expect(undecodable[0]).toMatchObject({ encoded: { n: "from an older schema" }, failure: { jobId: "old-1", jobClass: "permanent" } })
    expect(await letterOf(h, "schema-changed", "old-1")).toMatchObject({ jobClass: "permanent", attemptsMade: 1 })
    expect(runs.get("old-1")).toBeUndefined()
  })

  it("a job that reaches BullMQ's attempts before its class budget is dead-lettered and compensated, not dropped", async () => {
    await h.inspect("always-transient").add("always-transient", { n: 1 }, { jobId: "ex-1", attempts: 2, backoff: { type: "lumiku" } })
    const letter = await eventually(() => letterOf(h, "always-transient", "ex-1"), 5_000, "dead letter")
    expect(letter).toMatchObject({ jobClass: "transient", attemptsMade: 2 })
    expect(letter.reason).toContain("2 attempts exhausted")
    expect(await eventually(async () => compensations.get("ex-1"), 5_000, "compensation")).toBe(1)
    expect(runs.get("ex-1")).toBe(2)
  })

  it("a handler interrupted by something other than its budget or the shutdown fails like any other (retried, then dead-lettered and compensated)", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("self-interrupted"), "int-1", { n: 1 }))
    const letter = await eventually(() => letterOf(h, "self-interrupted", "int-1"), 5_000, "dead letter")
    expect(letter).toMatchObject({ jobClass: "transient", attemptsMade: 3 })
    expect(letter.lastError.message).toContain("interrupted")
    expect(await eventually(async () => compensations.get("int-1"), 5_000, "compensation")).toBe(1)
    expect(runs.get("int-1")).toBe(3)
  })

  it("retry budgets are per class: a timeout after two transient failures still gets its timeout budget", async () => {
    // transient budget 3, timeout budget 2: T, T, timeout, then success
    await Effect.runPromise(h.queues.enqueue(byQueue("classes"), "classes-1", { n: 1 }))
    await eventually(async () => (await stateOf(h, "classes", "classes-1")) === "completed" || undefined, 10_000, "completion")
    expect(runs.get("classes-1")).toBe(4)
    expect(compensations.get("classes-1")).toBeUndefined()
    expect(await letterOf(h, "classes", "classes-1")).toBeUndefined()
  })

  it("enqueueing an existing id with another payload is a conflict; the same payload is idempotent", async () => {
    await Effect.runPromise(h.queues.enqueue(byQueue("plain"), "same-1", { n: 1 }))
    expect(await Effect.runPromise(h.queues.enqueue(byQueue("plain"), "same-1", { n: 1 }))).toEqual({ jobId: "same-1" })
    const conflict = await Effect.runPromise(Effect.either(h.queues.enqueue(byQueue("plain"), "same-1", { n: 2 })))
    expect(Either.isLeft(conflict) && conflict.left._tag).toBe("JobConflict")
    expect((await h.inspect("plain").getJob("same-1"))?.data).toEqual({ n: 1 })
  })

  it("a fresh id (drawn by the caller just now) is added without the read-back; BullMQ still adds it once", async () => {
    expect(await Effect.runPromise(h.queues.enqueue(byQueue("plain"), "fresh-1", { n: 1 }, { fresh: true }))).toEqual({ jobId: "fresh-1" })
    expect((await h.inspect("plain").getJob("fresh-1"))?.data).toEqual({ n: 1 })
    // Only a caller that did not draw the id can reuse it: the fresh path trusts the caller and adds nothing more.
    await Effect.runPromise(h.queues.enqueue(byQueue("plain"), "fresh-1", { n: 2 }, { fresh: true }))
    expect((await h.inspect("plain").getJob("fresh-1"))?.data).toEqual({ n: 1 })
    const conflict = await Effect.runPromise(Effect.either(h.queues.enqueue(byQueue("plain"), "fresh-1", { n: 2 })))
    expect(Either.isLeft(conflict) && conflict.left._tag).toBe("JobConflict")
  })

  it("a hung compensation does not hold up the workers' release", async () => {
    const started = Date.now()
    await h.close()
    expect(Date.now() - started).toBeLessThan(10_000)
    h = undefined as unknown as JobHarness // closed here; afterAll has nothing left to do
  })
})

describe("queue names the job system derives", () => {
  it("a queue named like a dead-letter or compensation queue is refused at definition", async () => {
    for (const queue of ["mail-dlq", "mail-compensate", "Mail-DLQ"]) {
      expect(() => defineJob({ queue, payload: Payload, timeout: "1 second", concurrency: 1 })).toThrow(/must not end in/)
    }
    // and by the queues layer, for a definition that bypassed defineJob
    const config = await Effect.runPromise(appConfigFrom(testEnv()))
    const exit = await Effect.runPromiseExit(
      Effect.scoped(Layer.build(makeJobQueuesLive([{ queue: "mail-dlq", payload: Payload, timeout: "1 second", concurrency: 1 }]))).pipe(
        Effect.provideService(AppConfig, config),
        // never reached: the name is refused before any connection is made
        Effect.provideService(Redis, {} as RedisShape)
      )
    )
    expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toMatch(/"mail-dlq" ends in "-dlq", which is reserved/)
  })
})

describe("the failure path while Redis is away", () => {
  const gates = new Map<string, ReturnType<typeof latch>>()
  const progressTimes: Array<number> = []
  const outageHandlers: Array<AnyJobHandler> = [
    {
      definition: def("outage", "30 seconds"),
      run: (_p, ctx) =>
        Effect.promise(() => gates.get(ctx.jobId)!.promise).pipe(
          Effect.zipRight(Effect.suspend(() => (bump(runs, ctx.jobId), Effect.fail(new JobPermanent({ reason: "refused" })))))
        ),
      compensate: counted
    },
    {
      definition: def("progress", "30 seconds"),
      run: (_p, ctx) =>
        Effect.promise(() => gates.get(ctx.jobId)!.promise).pipe(
          Effect.zipRight(Effect.forEach([10, 20, 30], (percent) =>
            Effect.suspend(() => {
              const start = performance.now()
              return ctx.progress(percent).pipe(Effect.ensuring(Effect.sync(() => void progressTimes.push(performance.now() - start))))
            }))),
          Effect.zipRight(Effect.fail(new JobTransient({ reason: "done measuring" })))
        )
    }
  ]
  let proxy: TcpProxy
  let h: JobHarness
  beforeAll(async () => {
    proxy = await TcpProxy.start(6379)
    h = await startJobs({ ...fastRetries, REDIS_PORT: String(proxy.port) }, outageHandlers)
  })
  afterAll(async () => {
    proxy?.setMode("pass")
    await h?.close()
    await proxy?.close()
  })

  it("a 3 s Redis outage while a job fails for good: the dead letter and compensation wait for Redis; the handler never runs again", async () => {
    gates.set("out-1", latch())
    await Effect.runPromise(h.queues.enqueue(outageHandlers[0]!.definition, "out-1", { n: 1 }))
    await eventually(async () => (await stateOf(h, "outage", "out-1")) === "active" || undefined, 5_000, "job running")
    proxy.setMode("refuse")
    gates.get("out-1")!.open()
    await sleep(3_000)
    proxy.setMode("pass")
    await eventually(() => letterOf(h, "outage", "out-1"), 20_000, "dead letter")
    expect(await eventually(async () => compensations.get("out-1"), 10_000, "compensation")).toBe(1)
    await eventually(async () => (await stateOf(h, "outage", "out-1")) === "failed" || undefined, 10_000, "job failed")
    await sleep(1_000)
    expect(runs.get("out-1")).toBe(1)
    expect(compensations.get("out-1")).toBe(1)
  }, 45_000)

  it("progress never blocks a job while Redis is down: each call returns within its budget, with a warning", async () => {
    gates.set("prog-1", latch())
    await Effect.runPromise(h.queues.enqueue(outageHandlers[1]!.definition, "prog-1", { n: 1 }))
    await eventually(async () => (await stateOf(h, "progress", "prog-1")) === "active" || undefined, 5_000, "job running")
    proxy.setMode("refuse")
    gates.get("prog-1")!.open()
    await eventually(async () => (progressTimes.length === 3 ? true : undefined), 5_000, "three progress calls")
    proxy.setMode("pass")
    for (const ms of progressTimes) expect(ms).toBeLessThan(1_000)
    const dropped = h.logs().filter((l) => String(l["msg"]).startsWith("progress update dropped"))
    expect(dropped.length).toBeGreaterThanOrEqual(1)
    expect(dropped[0]).toMatchObject({ level: 40 })
  }, 30_000)
})
