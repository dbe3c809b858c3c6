import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { loadavg } from "node:os"
import { type Job, Queue, Worker } from "bullmq"
import { Duration, Effect, Layer, Schema } from "effect"
import { Redis as IORedis } from "ioredis"
import { appConfigFrom } from "../src/layers/platform/AppConfigLive.js"
import { jobOptions, makeJobQueuesLive } from "../src/layers/jobs/JobQueuesLive.js"
import { bullPrefix } from "../src/services/jobs/queueNames.js"
import { makeLoggerLive } from "../src/layers/platform/LoggerLive.js"
import { RedisLive } from "../src/layers/platform/RedisLive.js"
import { AppConfig, type AppConfigShape } from "../src/services/platform/AppConfig.js"
import { JobQueues } from "../src/services/jobs/JobQueues.js"
import { defineJob } from "../src/services/jobs/JobDefinition.js"
import { makeJobWorker } from "../src/workers/jobs/runtime.js"

/**
 * npm run bench:jobs: no-op jobs through the Effect worker runtime (`makeJobWorker`, enqueued with
 * `JobQueues.enqueue`) against a bare BullMQ Queue + Worker with a no-op processor, in one process
 * and one run, at concurrency 1 and 10. Both use the same BullMQ job options (`jobOptions(config)`),
 * the same worker lock settings and the same Redis.
 *
 * Per trial (a fresh queue, worker and connections), three phases:
 * - stream: the producer adds the N jobs one after another (each add awaited) while the worker runs
 *   in the same process; jobs/s is N over first enqueue to last completion, latency is enqueue to
 *   processor/handler start of every job. This is the headline figure.
 * - drain: the queue is paused, N jobs are added, and the clock starts at resume: the worker alone
 *   (no producer competing for the event loop), first job to last completion.
 * - idle: BENCH_IDLE_JOBS jobs added at BENCH_IDLE_RATE/s, well under capacity, so enqueue-to-start
 *   is the pick-up latency of an idle worker rather than time spent waiting behind other jobs.
 * Trials run bare, ours, ours, bare at each concurrency after a discarded warm-up of each; figures are
 * the mean of the two trials (latency percentiles over both trials' samples). Redis commands per job
 * are the INFO commandstats delta over the stream phase (commands run inside Lua scripts included), so
 * other clients of the same Redis inflate them.
 *
 * BENCH_JOBS sets N for both concurrencies (default 2000 at c=1, 5000 at c=10). REDIS_HOST/REDIS_PORT
 * choose the Redis (default 127.0.0.1:6379). BENCH_CONCURRENCY (default "1,10"), BENCH_WARMUP_JOBS,
 * BENCH_IDLE_JOBS and BENCH_IDLE_RATE tune the rest. Keys live under a per-run prefix deleted at the end.
 */

const env = process.env
const jobsFor = (concurrency: number) => Number(env["BENCH_JOBS"] ?? (concurrency === 1 ? "2000" : "5000"))
const idleJobs = Number(env["BENCH_IDLE_JOBS"] ?? "300")
const idleRate = Number(env["BENCH_IDLE_RATE"] ?? "250")
const warmupJobs = Number(env["BENCH_WARMUP_JOBS"] ?? "1000")
const concurrencies = (env["BENCH_CONCURRENCY"] ?? "1,10").split(",").map(Number)
const phaseTimeoutMs = 180_000
/** BENCH_ONLY=bare|ours runs one target alone, for profiling (`node --cpu-prof --import tsx bench/jobs.ts`). */
const only = env["BENCH_ONLY"] === "bare" || env["BENCH_ONLY"] === "ours" ? env["BENCH_ONLY"] : undefined
const bullmqVersion = (JSON.parse(readFileSync(new URL("../node_modules/bullmq/package.json", import.meta.url), "utf8")) as { version: string }).version
const runId = randomBytes(4).toString("hex")
const keyPrefix = `lumiku_bench:${runId}:`

/** Wall-clock milliseconds with sub-millisecond resolution (Date.now() is whole ms); one process, one clock. */
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Payload { readonly i: number; readonly t: number }

/** What the processor or handler records at start; a phase waits until `expected` jobs have started. */
class Recorder {
  latencies: Array<number> = []
  started = 0
  expected = 0
  private onAll: (() => void) | undefined
  arm(expected: number) {
    this.latencies = []
    this.started = 0
    this.expected = expected
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.started}/${expected} jobs started in ${phaseTimeoutMs} ms`)), phaseTimeoutMs)
      this.onAll = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
  record(payload: Payload) {
    this.latencies.push(now() - payload.t)
    this.started += 1
    if (this.started === this.expected) this.onAll?.()
  }
}

/**
 * A target under test: its producer, plus a side Queue (own connection) to pause, resume and poll.
 * `produce` adds `count` jobs one after another, each add awaited, ids `<prefix>-<i>`; with `due`,
 * job i is added no earlier than `due(i)`. Ours produces from inside one Effect fiber, as an Effect
 * caller (an HTTP handler) does.
 */
interface Target {
  readonly produce: (count: number, prefix: string, due?: (i: number) => number) => Promise<void>
  readonly monitor: Monitor
  readonly recorder: Recorder
  readonly close: () => Promise<void>
}

const redisOptions = (config: AppConfigShape) => ({ host: config.redis.host, port: config.redis.port, db: config.redis.db })

interface Monitor { readonly queue: Queue; readonly connection: IORedis }

const openMonitor = (config: AppConfigShape, queue: string): Monitor => {
  const connection = new IORedis(redisOptions(config))
  const monitor = new Queue(queue, { connection, prefix: bullPrefix(config) })
  monitor.on("error", (error) => process.stderr.write(`monitor: ${error.message}\n`))
  return { queue: monitor, connection }
}

const closeMonitor = async ({ connection, queue }: Monitor) => {
  await queue.close()
  await connection.quit()
}

const bareTarget = async (config: AppConfigShape, queue: string, concurrency: number): Promise<Target> => {
  const recorder = new Recorder()
  const options = jobOptions(config)
  const producerConnection = new IORedis(redisOptions(config))
  const workerConnection = new IORedis({ ...redisOptions(config), maxRetriesPerRequest: null })
  const producer = new Queue(queue, { connection: producerConnection, prefix: bullPrefix(config) })
  const worker = new Worker(
    queue,
    async (job: Job<Payload>) => {
      recorder.record(job.data)
    },
    {
      connection: workerConnection,
      prefix: bullPrefix(config),
      concurrency,
      lockDuration: Duration.toMillis(config.jobs.lockDuration),
      stalledInterval: Duration.toMillis(config.jobs.stalledInterval),
      maxStalledCount: 1
    }
  )
  producer.on("error", (error) => process.stderr.write(`bare producer: ${error.message}\n`))
  worker.on("error", (error) => process.stderr.write(`bare worker: ${error.message}\n`))
  await worker.waitUntilReady()
  await sleep(200) // let the worker reach its blocking wait, as ours does below
  const monitor = openMonitor(config, queue)
  return {
    produce: async (count, prefix, due) => {
      for (let i = 0; i < count; i++) {
        const wait = due === undefined ? 0 : due(i) - now()
        if (wait > 0) await sleep(wait)
        await producer.add(queue, { i, t: now() }, { ...options, jobId: `${prefix}-${i}` })
      }
    },
    monitor,
    recorder,
    close: async () => {
      await worker.close()
      await producer.close()
      await closeMonitor(monitor)
      await Promise.all([producerConnection.quit(), workerConnection.quit()])
    }
  }
}

const oursTarget = async (config: AppConfigShape, queue: string, concurrency: number): Promise<Target> => {
  const recorder = new Recorder()
  const definition = defineJob({
    queue,
    payload: Schema.Struct({ i: Schema.Number, t: Schema.Number }),
    timeout: "1 minute",
    concurrency
  })
  const handler = {
    definition,
    run: (payload: Payload) => Effect.sync(() => recorder.record(payload))
  }
  const base = RedisLive.pipe(
    Layer.provideMerge(makeLoggerLive({ destination: process.stderr })),
    Layer.provideMerge(Layer.succeed(AppConfig, config))
  )
  const queues = makeJobQueuesLive([definition]).pipe(Layer.provideMerge(base))
  const app = makeJobWorker(handler).pipe(Layer.provideMerge(queues))
  // The layer lives until `close` releases it: a fiber holds it open, the same as the app's main does.
  let jobQueues: JobQueues["Type"] | undefined
  let release: (() => void) | undefined
  const released = new Promise<void>((resolve) => (release = resolve))
  let ready: (() => void) | undefined
  const started = new Promise<void>((resolve) => (ready = resolve))
  const running = Effect.runPromise(
    Effect.gen(function*() {
      jobQueues = yield* JobQueues
      ready!()
      yield* Effect.promise(() => released)
    }).pipe(Effect.provide(app))
  )
  await Promise.race([started, running])
  await sleep(200) // the worker is created synchronously in the layer; let it reach its blocking wait
  const monitor = openMonitor(config, queue)
  return {
    produce: (count, prefix, due) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < count; i++) {
          const wait = due === undefined ? 0 : due(i) - now()
          if (wait > 0) yield* Effect.promise(() => sleep(wait))
          yield* jobQueues!.enqueue(definition, `${prefix}-${i}`, { i, t: now() })
        }
      })),
    monitor,
    recorder,
    close: async () => {
      release!()
      await running
      await closeMonitor(monitor)
    }
  }
}

/** Waits, after every job has started, until none is active any more (the last one is completed). */
const drained = async ({ queue }: Monitor) => {
  const deadline = Date.now() + phaseTimeoutMs
  while ((await queue.getActiveCount()) + (await queue.getWaitingCount()) > 0) {
    if (Date.now() > deadline) throw new Error("jobs still active at the phase timeout")
    await sleep(1)
  }
  return now()
}

const commandStats = async (client: IORedis) => {
  const info = await client.info("commandstats")
  let calls = 0
  let scripts = 0
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls += Number(match[2])
    if (match[1] === "evalsha" || match[1] === "eval") scripts += Number(match[2])
  }
  return { calls, scripts }
}

interface Phase { readonly jobsPerSecond: number; readonly latencies: ReadonlyArray<number>; readonly cpu: number }
interface Trial {
  readonly stream: Phase & { readonly enqueueMs: number; readonly commands: number; readonly scripts: number }
  readonly drain: Phase
  readonly idle: Phase
}

const cpuShare = (startCpu: NodeJS.CpuUsage, startedAt: number) => {
  const used = process.cpuUsage(startCpu)
  return (used.user + used.system) / 1000 / (now() - startedAt)
}

const runTrial = async (target: Target, n: number, stats: IORedis): Promise<Trial> => {
  const { monitor, recorder } = target
  // stream
  let all = recorder.arm(n)
  const before = await commandStats(stats)
  let cpu = process.cpuUsage()
  let t0 = now()
  await target.produce(n, "s")
  const enqueueMs = now() - t0
  await all
  let t1 = await drained(monitor)
  const after = await commandStats(stats)
  const stream = {
    jobsPerSecond: n / ((t1 - t0) / 1000),
    latencies: recorder.latencies,
    cpu: cpuShare(cpu, t0),
    enqueueMs,
    commands: (after.calls - before.calls - 1) / n,
    scripts: (after.scripts - before.scripts) / n
  }
  // drain
  await monitor.queue.pause()
  all = recorder.arm(n)
  await target.produce(n, "d")
  cpu = process.cpuUsage()
  t0 = now()
  await monitor.queue.resume()
  await all
  t1 = await drained(monitor)
  const drain = { jobsPerSecond: n / ((t1 - t0) / 1000), latencies: [], cpu: cpuShare(cpu, t0) }
  // idle
  all = recorder.arm(idleJobs)
  cpu = process.cpuUsage()
  t0 = now()
  const start = t0
  await target.produce(idleJobs, "i", (i) => start + (i * 1000) / idleRate)
  await all
  t1 = await drained(monitor)
  const idle = { jobsPerSecond: idleJobs / ((t1 - t0) / 1000), latencies: recorder.latencies, cpu: cpuShare(cpu, t0) }
  return { stream, drain, idle }
}

const percentile = (sorted: ReadonlyArray<number>, q: number) => sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1))] ?? NaN
const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1))
const int = (x: number) => Math.round(x).toLocaleString("en-US")

type Kind = "bare" | "ours"
const label: Record<Kind, string> = { bare: "bare BullMQ Worker", ours: "makeJobWorker + JobQueues.enqueue" }

const cleanup = async (client: IORedis) => {
  let cursor = "0"
  let deleted = 0
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 1000)
    cursor = next
    if (keys.length > 0) deleted += await client.unlink(...keys)
  } while (cursor !== "0")
  return deleted
}

const main = async () => {
  const config = await Effect.runPromise(appConfigFrom({
    ...Object.fromEntries(["REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD"].flatMap((k) => (env[k] === undefined ? [] : [[k, env[k]!]]))),
    REDIS_KEY_PREFIX: keyPrefix,
    LOG_LEVEL: "warn",
    LOG_FORMAT: "json"
  }))
  const stats = new IORedis(redisOptions(config))
  let interrupted = false
  process.once("SIGINT", () => {
    interrupted = true
    process.stderr.write("interrupted; deleting this run's keys\n")
    void cleanup(stats).finally(() => process.exit(130))
  })
  try {
    const clientsBefore = Number(/connected_clients:(\d+)/.exec(await stats.info("clients"))?.[1] ?? 0)
    const load = loadavg()[0]!
    let sequence = 0
    const trial = async (kind: Kind, concurrency: number, n: number) => {
      const queue = `bench-${kind}-c${concurrency}-${++sequence}`
      const target = kind === "bare" ? await bareTarget(config, queue, concurrency) : await oursTarget(config, queue, concurrency)
      try {
        return await runTrial(target, n, stats)
      } finally {
        await target.close()
      }
    }

    process.stderr.write(`warm-up (${warmupJobs} jobs each, c=10)\n`)
    for (const kind of ["bare", "ours"] as const) if (only === undefined || only === kind) await trial(kind, 10, warmupJobs)

    const results = new Map<string, Array<Trial>>()
    const order: ReadonlyArray<Kind> = only === undefined ? ["bare", "ours", "ours", "bare"] : [only, only]
    if (only !== undefined) {
      process.stderr.write(`BENCH_ONLY=${only}: trials only, no comparison\n`)
    }
    for (const concurrency of concurrencies) {
      for (const kind of order) {
        if (interrupted) return
        const n = jobsFor(concurrency)
        process.stderr.write(`${kind} c=${concurrency} n=${n}\n`)
        const result = await trial(kind, concurrency, n)
        const key = `${kind}/${concurrency}`
        results.set(key, [...(results.get(key) ?? []), result])
        process.stderr.write(
          `  stream ${int(result.stream.jobsPerSecond)} jobs/s (enqueue ${int(result.stream.enqueueMs)} ms), drain ${int(result.drain.jobsPerSecond)} jobs/s\n`
        )
      }
    }

    if (only !== undefined) return
    const summary = (kind: Kind, concurrency: number) => {
      const trials = results.get(`${kind}/${concurrency}`)!
      const sorted = (pick: (t: Trial) => ReadonlyArray<number>) => trials.flatMap(pick).sort((a, b) => a - b)
      const stream = sorted((t) => t.stream.latencies)
      const idle = sorted((t) => t.idle.latencies)
      return {
        stream: mean(trials.map((t) => t.stream.jobsPerSecond)),
        streamRuns: trials.map((t) => int(t.stream.jobsPerSecond)).join(" / "),
        p50: percentile(stream, 0.5),
        p99: percentile(stream, 0.99),
        enqueuePerJob: mean(trials.map((t) => t.stream.enqueueMs)) / jobsFor(concurrency),
        cpu: mean(trials.map((t) => t.stream.cpu)),
        commands: mean(trials.map((t) => t.stream.commands)),
        scripts: mean(trials.map((t) => t.stream.scripts)),
        drain: mean(trials.map((t) => t.drain.jobsPerSecond)),
        drainRuns: trials.map((t) => int(t.drain.jobsPerSecond)).join(" / "),
        drainCpu: mean(trials.map((t) => t.drain.cpu)),
        idleP50: percentile(idle, 0.5),
        idleP99: percentile(idle, 0.99)
      }
    }
    const clientsAfter = Number(/connected_clients:(\d+)/.exec(await stats.info("clients"))?.[1] ?? 0)
    const lines = [
      `node ${process.version}, bullmq ${bullmqVersion}, ${order.join(", ")} per concurrency (mean of 2 trials), N = ${concurrencies.map((c) => `${jobsFor(c)} at c=${c}`).join(", ")}; ` +
      `load average ${load.toFixed(2)} at start, ${clientsBefore}/${clientsAfter} Redis clients connected at start/end (this run's own: 1)`,
      "",
      "Stream (producer and worker in one process, each add awaited; first enqueue to last completion):",
      "",
      "| target | concurrency | jobs/s | p50 ms | p99 ms | ratio to bare |",
      "|---|---:|---:|---:|---:|---:|"
    ]
    for (const concurrency of concurrencies) {
      const bare = summary("bare", concurrency)
      for (const kind of ["bare", "ours"] as const) {
        const s = summary(kind, concurrency)
        lines.push(`| ${label[kind]} | ${concurrency} | ${int(s.stream)} | ${ms(s.p50)} | ${ms(s.p99)} | ${(s.stream / bare.stream).toFixed(2)} |`)
      }
    }
    lines.push(
      "",
      "Detail: trials, worker-only drain (queue paused, N added, resumed), idle pick-up latency " +
      `(${idleJobs} jobs at ${idleRate}/s), enqueue cost, Node CPU share and Redis commands per job (stream):`,
      "",
      "| target | c | stream jobs/s (trials) | drain jobs/s (trials) | drain ratio | idle p50 ms | idle p99 ms | enqueue ms/job | CPU stream / drain | cmds/job (scripts) |",
      "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"
    )
    for (const concurrency of concurrencies) {
      const bare = summary("bare", concurrency)
      for (const kind of ["bare", "ours"] as const) {
        const s = summary(kind, concurrency)
        lines.push(
          `| ${kind} | ${concurrency} | ${s.streamRuns} | ${s.drainRuns} | ${(s.drain / bare.drain).toFixed(2)} | ${ms(s.idleP50)} | ${ms(s.idleP99)} | ` +
            `${(s.enqueuePerJob).toFixed(3)} | ${(s.cpu * 100).toFixed(0)}% / ${(s.drainCpu * 100).toFixed(0)}% | ${s.commands.toFixed(1)} (${s.scripts.toFixed(2)}) |`
        )
      }
    }
    process.stdout.write(lines.join("\n") + "\n")
  } finally {
    const deleted = await cleanup(stats)
    process.stderr.write(`deleted ${deleted} keys under ${keyPrefix}\n`)
    await stats.quit()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
})
