import { Effect, Schema } from "effect"
import { afterEach, describe, expect, inject, it } from "vitest"
import { Lifecycle } from "../../src/services/platform/Lifecycle.js"
import { defineJob } from "../../src/services/jobs/JobDefinition.js"
import type { AnyJobHandler } from "../../src/workers/jobs/runtime.js"
import { eventually, type JobHarness, startJobs } from "../support/jobHarness.js"
import { PrivateRedis } from "../support/redisServer.js"
import { TcpProxy } from "../support/tcpProxy.js"

/**
 * Worker release in this process, against real Redis and BullMQ: the shutdown budget is a real bound
 * (release code is uninterruptible, so a plain Effect.timeout there waited for the job), the job it
 * cuts short is left active for stalled recovery, and a hung Redis cannot hold the close.
 */
const starts = new Map<string, number>()
const LongJob = defineJob({ queue: "long-sleep", payload: Schema.Struct({ ms: Schema.Number }), timeout: "1 minute", concurrency: 2 })
const longHandler: AnyJobHandler = {
  definition: LongJob,
  run: (payload, ctx) =>
    Effect.suspend(() => {
      const n = (starts.get(ctx.jobId) ?? 0) + 1
      starts.set(ctx.jobId, n)
      // The first run outlives any shutdown budget; a recovered run finishes at once.
      return n === 1 ? Effect.sleep(payload.ms) : Effect.void
    })
}

const requestShutdown = (h: JobHarness) => h.run(Effect.flatMap(Lifecycle, (l) => l.requestShutdown({ _tag: "Requested", why: "test" })))

describe("worker release at shutdown", () => {
  const open: Array<JobHarness> = []
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const h of open.splice(0)) await h.close().catch(() => undefined)
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it("a 20 s job at shutdown: interrupted at the budget (cap - 1.5 s), close returns on time, the job stays active and another worker recovers it by stalled recovery", async () => {
    const env = {
      REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}worker-budget:`,
      SHUTDOWN_TIMEOUT: "3000",
      JOB_LOCK_DURATION: "2000",
      JOB_STALLED_INTERVAL: "1000"
    }
    const first = await startJobs(env, [longHandler])
    open.push(first)
    await Effect.runPromise(first.queues.enqueue(LongJob, "budget-1", { ms: 20_000 }))
    await eventually(async () => starts.get("budget-1"), 10_000, "job start")
    await requestShutdown(first)
    const start = performance.now()
    await first.close()
    open.splice(open.indexOf(first), 1)
    const elapsed = performance.now() - start
    // 3 s cap - 1.5 s margin = 1.5 s for the job, then the interruption and the other layers.
    expect(elapsed).toBeGreaterThanOrEqual(1_300)
    expect(elapsed).toBeLessThan(2_800)
    expect(first.forcedExits()).toEqual([])
    expect(first.logs().some((l) => String(l["msg"]).includes("interrupting active jobs, left for stalled recovery"))).toBe(true)

    const second = await startJobs(env, [longHandler])
    open.push(second)
    // Neither failed nor completed by the first worker: it is still active, no attempt used.
    const job = await second.inspect("long-sleep").getJob("budget-1")
    expect(await job?.getState()).toBe("active")
    expect(job?.attemptsMade).toBe(0)
    await eventually(async () => ((await second.inspect("long-sleep").getJob("budget-1").then((j) => j?.getState())) === "completed" ? true : undefined), 15_000, "recovered completion")
    expect(starts.get("budget-1")).toBe(2)
    const recovered = await second.inspect("long-sleep").getJob("budget-1")
    expect(recovered?.stalledCounter).toBe(1)
    expect(recovered?.attemptsMade).toBe(1)
  }, 40_000)

  it("Redis hangs during shutdown: the workers, queues and connections are released before the cap", async () => {
    const server = await PrivateRedis.start()
    cleanups.push(() => server.stop())
    const proxy = await TcpProxy.start(server.port)
    cleanups.push(() => proxy.close())
    const h = await startJobs({ REDIS_PORT: String(proxy.port), SHUTDOWN_TIMEOUT: "4000" }, [longHandler])
    open.push(h)
    // Every connection is up and in use: a job went through.
    await Effect.runPromise(h.queues.enqueue(LongJob, "before-hang", { ms: 0 }))
    await eventually(async () => ((await h.inspect("long-sleep").getJob("before-hang").then((j) => j?.getState())) === "completed" ? true : undefined), 10_000, "a job completed")
    proxy.setMode("hang")
    await requestShutdown(h)
    const start = performance.now()
    await h.close()
    open.splice(open.indexOf(h), 1)
    const elapsed = performance.now() - start
    expect(elapsed).toBeLessThan(4_000)
    expect(h.forcedExits()).toEqual([])
  }, 40_000)

  it("a job stuck in uninterruptible code does not hold the release past the cap", async () => {
    const Stuck = defineJob({ queue: "stuck-uninterruptible", payload: Schema.Struct({ ms: Schema.Number }), timeout: "1 minute", concurrency: 1 })
    const stuckHandler: AnyJobHandler = { definition: Stuck, run: (payload) => Effect.uninterruptible(Effect.sleep(payload.ms)) }
    const h = await startJobs({ REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}worker-stuck:`, SHUTDOWN_TIMEOUT: "3000" }, [stuckHandler])
    open.push(h)
    await Effect.runPromise(h.queues.enqueue(Stuck, "stuck-1", { ms: 20_000 }))
    await eventually(async () => ((await h.inspect("stuck-uninterruptible").getJob("stuck-1").then((j) => j?.getState())) === "active" ? true : undefined), 10_000, "job active")
    await requestShutdown(h)
    const start = performance.now()
    await h.close()
    open.splice(open.indexOf(h), 1)
    expect(performance.now() - start).toBeLessThan(3_000)
    expect(h.forcedExits()).toEqual([])
  }, 40_000)
})
