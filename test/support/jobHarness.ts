import { PassThrough } from "node:stream"
import type { SqlClient } from "@effect/sql"
import { Queue } from "bullmq"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { InfraLive } from "../../src/AppLive.js"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { makeJobQueuesLive } from "../../src/layers/jobs/JobQueuesLive.js"
import { bullPrefix } from "../../src/services/jobs/queueNames.js"
import { makeLifecycleLive } from "../../src/layers/platform/LifecycleLive.js"
import { makeLoggerLive } from "../../src/layers/platform/LoggerLive.js"
import { AppConfig, type AppConfigShape } from "../../src/services/platform/AppConfig.js"
import { JobQueues, type JobQueuesShape } from "../../src/services/jobs/JobQueues.js"
import { Lifecycle } from "../../src/services/platform/Lifecycle.js"
import { Ledger } from "../../src/services/credits/Ledger.js"
import { AppCatalog, type GenerationApp } from "../../src/services/generations/AppCatalog.js"
import { Generations } from "../../src/services/generations/Generations.js"
import { Payments } from "../../src/services/payments/Payments.js"
import { HuggingFaceImageGeneratorLive } from "../../src/layers/images/HuggingFaceImageGenerator.js"
import { DuitkuClientLive } from "../../src/layers/payments/DuitkuClientLive.js"
import { jobDefinitions } from "../../src/workers/registry.js"
import type { AnyJobHandler } from "../../src/workers/jobs/runtime.js"
import { makeWorkersLive } from "../../src/workers/jobs/WorkersLive.js"
import { testEnv } from "./env.js"

export interface JobHarness {
  readonly config: AppConfigShape
  /** Runs an effect against the harness' services (Ledger, SqlClient, JobQueues, ...). */
  readonly run: <A, E>(effect: Effect.Effect<A, E, HarnessServices>) => Promise<A>
  readonly queues: JobQueuesShape
  /** A plain BullMQ Queue on the same prefix, to look at job states from outside. */
  readonly inspect: (queue: string) => Queue
  readonly logs: () => ReadonlyArray<Record<string, unknown>>
  /** Exit codes the shutdown cap asked for (it never exits the test process). */
  readonly forcedExits: () => ReadonlyArray<number>
  readonly close: () => Promise<void>
}

type HarnessServices = Ledger | JobQueues | SqlClient.SqlClient | AppConfig | Lifecycle | Generations

/** The job queues and workers for `handlers`, over the real infrastructure, in this process. */
export const startJobs = async (
  env: Record<string, string>,
  handlers: ReadonlyArray<AnyJobHandler>,
  apps: ReadonlyArray<GenerationApp> = []
): Promise<JobHarness> => {
  const config = await Effect.runPromise(appConfigFrom(testEnv({ LOG_LEVEL: "info", ...env })))
  const lines: Array<string> = []
  const forcedExits: Array<number> = []
  const destination = new PassThrough()
  destination.on("data", (c: Buffer) => lines.push(...c.toString().split("\n").filter((l) => l !== "")))
  const layer = makeWorkersLive(handlers).pipe(
    Layer.provideMerge(Generations.Default),
    Layer.provideMerge(AppCatalog.layer(apps)),
    Layer.provideMerge(makeJobQueuesLive(jobDefinitions(handlers))),
    Layer.provideMerge(Payments.Default.pipe(Layer.provide(DuitkuClientLive))),
    Layer.provideMerge(Ledger.Default),
    Layer.provideMerge(HuggingFaceImageGeneratorLive),
    Layer.provideMerge(InfraLive),
    // A shutdown cap that fires records its exit code instead of ending the test process.
    Layer.provideMerge(makeLifecycleLive({ processHandlers: false, exit: (code) => void forcedExits.push(code) })),
    Layer.provideMerge(makeLoggerLive({ destination })),
    Layer.provideMerge(Layer.succeed(AppConfig, config))
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const connection = new IORedis({ host: config.redis.host, port: config.redis.port, maxRetriesPerRequest: null })
  connection.on("error", () => undefined) // tests that cut Redis off read it again once it is back
  const inspectors = new Map<string, Queue>()
  return {
    config,
    run: (effect) => Effect.runPromise(Effect.provide(effect, context)),
    queues: Context.get(context, JobQueues),
    inspect: (name) => {
      let queue = inspectors.get(name)
      if (queue === undefined) {
        queue = new Queue(name, { connection, prefix: bullPrefix(config) })
        inspectors.set(name, queue)
      }
      return queue
    },
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    forcedExits: () => forcedExits,
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      for (const q of inspectors.values()) await q.close()
      // Not QUIT: a test may leave Redis hung behind a proxy.
      connection.disconnect()
    }
  }
}

export const eventually = async <A>(probe: () => Promise<A | undefined>, withinMs: number, what = "condition"): Promise<A> => {
  const start = Date.now()
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined && value !== false) return value
    if (Date.now() - start > withinMs) throw new Error(`${what} not reached within ${withinMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
