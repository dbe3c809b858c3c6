import type { SqlClient } from "@effect/sql"
import { DelayedError, type Job, UnrecoverableError, Worker } from "bullmq"
import { Cause, Duration, Effect, Either, Exit, type Fiber, FiberId, FiberSet, Layer, Option, Schema, Scope } from "effect"
import { bullPrefix } from "../layers/JobQueuesLive.js"
import { AppConfig } from "../services/AppConfig.js"
import { type DeadLetter, JobQueues } from "../services/JobQueues.js"
import { classify } from "../services/jobs/classify.js"
import type { JobDefinition } from "../services/jobs/JobDefinition.js"
import { type JobError, jobClassOf, JobPermanent, JobTimeout } from "../services/jobs/JobError.js"
import { decide, type RetryDecision } from "../services/jobs/retryPolicy.js"
import { awaitWithin, Lifecycle, releaseBudget, releaseStage } from "../services/Lifecycle.js"
import type { Ffmpeg } from "../services/Ffmpeg.js"
import type { Ledger } from "../services/Ledger.js"
import { Redis } from "../services/Redis.js"
import type { Storage } from "../services/Storage.js"

export interface JobContext {
  readonly jobId: string
  /** 1 for the first attempt. */
  readonly attempt: number
  /** Stores progress on the job and publishes it on the user's progress channel. */
  readonly progress: (percent: number, data?: Record<string, unknown>) => Effect.Effect<void>
}

/** How a job failed for good: what compensation (a refund, say) is told. */
export interface FinalFailure {
  readonly jobId: string
  readonly error: JobError
  readonly reason: string
}

export interface JobHandler<P, I, R> {
  readonly definition: JobDefinition<P, I>
  /** The work. Any failure is classified (see classify.ts); typed JobErrors are taken as they are. */
  readonly run: (payload: P, context: JobContext) => Effect.Effect<unknown, unknown, R>
  /** Runs exactly once, when the job fails for good (never on a failure that will be retried). */
  readonly compensate?: (payload: P, failure: FinalFailure) => Effect.Effect<void, unknown, R>
}

// `any`: a registry holds handlers of every payload type; each handler is typed where it is defined.
export type AnyJobHandler = JobHandler<any, any, WorkerServices>

/** What a job handler may use: everything the app layer provides. */
export type WorkerServices = AppConfig | Redis | JobQueues | SqlClient.SqlClient | Storage | Ffmpeg | Ledger

/** What the processor hands back to BullMQ. */
type Outcome = { readonly _tag: "Done"; readonly value: unknown } | { readonly _tag: "Throw"; readonly error: Error }

/** Thrown to BullMQ for a failure that will be retried; the custom backoff reads its delay. */
class RetryableJobFailure extends Error {
  constructor(message: string, readonly retryDelayMs: number) {
    super(message)
    this.name = "RetryableJobFailure"
  }
}

/** Time left, before the shutdown cap, for what follows the jobs: their interruption, the worker's and the other layers' release. */
const RELEASE_MARGIN_MS = 1_500
/** How long interrupted jobs get to stop: FFmpeg's SIGTERM grace (1 s), its SIGKILL, and some slack. */
const INTERRUPT_LIMIT = Duration.millis(1_300)
const CLOSE_LIMIT = Duration.seconds(2)
const FORCE_CLOSE_LIMIT = Duration.seconds(1)
const FIBERS_CLOSE_LIMIT = Duration.seconds(1)

/**
 * A FiberSet whose release does not wait for ever: FiberSet's own finalizer awaits every fiber it
 * interrupts, so one job stuck in uninterruptible code would hold the shutdown until the cap. Closed
 * from a daemon fiber and awaited interruptibly for at most 1 s; a fiber still running then is
 * abandoned (the process is ending).
 */
const ownedFiberSet = Effect.gen(function*() {
  const scope = yield* Scope.make()
  yield* Effect.addFinalizer(() =>
    Effect.forkDaemon(Scope.close(scope, Exit.void)).pipe(
      Effect.flatMap((closing) => awaitWithin(() => new Promise((resolve) => closing.addObserver(resolve)), FIBERS_CLOSE_LIMIT)),
      Effect.catchAll(() => Effect.logWarning("job fibers did not stop in time; abandoned"))
    )
  )
  return yield* Scope.extend(FiberSet.make<unknown, unknown>(), scope)
})

/** What a job given up at shutdown hands BullMQ: a promise that never settles (see abandonActive). */
const leftForStalledRecovery = (): Promise<never> => new Promise<never>(() => undefined)

export const progressChannel = (keyPrefix: string, userId: string) => `${keyPrefix}progress:${userId}`

/**
 * Runs one queue's jobs with an Effect handler inside a BullMQ Worker. Owns the worker and its
 * Redis connection. On release it stops taking jobs and lets active ones finish within the time
 * left before the shutdown cap; jobs still running then are interrupted (their FFmpeg children are
 * killed) and left to BullMQ's stalled-job recovery, and only then is the connection quit.
 */
export const makeJobWorker = <P, I, R>(handler: JobHandler<P, I, R>) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const config = yield* AppConfig
      const redis = yield* Redis
      const queues = yield* JobQueues
      const lifecycle = yield* Effect.serviceOption(Lifecycle)
      const { definition } = handler
      const queue = definition.queue
      const budget = Duration.decode(definition.timeout)
      const budgetMs = Duration.toMillis(budget)
      // Synchronous: a payload schema is plain data (no async transformations).
      const decodePayload = Schema.decodeUnknownEither(definition.payload)
      const concurrency = config.jobs.concurrency[queue] ?? definition.concurrency
      // Every job's fibers: the handler's, and the failure path's when there is one. The queue
      // annotation is captured once in the runtime they are forked from.
      const fibers = yield* ownedFiberSet
      const runFork = yield* FiberSet.runtime(fibers)<R | AppConfig>().pipe(Effect.annotateLogs("queue", queue))
      const awaitExit = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => new Promise<Exit.Exit<A, E>>((resolve) => fiber.addObserver(resolve))
      /** Set at shutdown once active jobs are given up: from then on an interrupted job is left active. */
      let abandoned = false

      const deadLetter = (job: Job, payload: unknown, error: JobError, reason: string) =>
        Effect.gen(function*() {
          const letter: DeadLetter = {
            queue,
            jobId: job.id!,
            payload: job.data,
            jobClass: jobClassOf(error),
            reason,
            lastError: { tag: error._tag, message: error.message },
            attemptsMade: job.attemptsMade + 1,
            attemptsStarted: job.attemptsStarted,
            enqueuedAt: new Date(job.timestamp).toISOString(),
            lastAttemptAt: job.processedOn === undefined ? null : new Date(job.processedOn).toISOString(),
            deadLetteredAt: new Date().toISOString()
          }
          yield* queues.deadLetters.record(letter)
          if (handler.compensate === undefined || payload === undefined) return
          // Exactly once, however often the failure path runs: the marker is claimed atomically
          // before compensating, and released again if compensation fails so a later run can retry.
          const marker = `jobs:compensated:${queue}:${job.id}`
          const claimed = yield* redis.use("claim compensation", (c) => c.set(marker, new Date().toISOString(), "NX"))
          if (claimed === null) return yield* Effect.logInfo("compensation already done for this job")
          yield* handler.compensate(payload as P, { jobId: job.id!, error, reason }).pipe(
            Effect.tapErrorCause(() => redis.use("release compensation", (c) => c.del(marker)).pipe(Effect.ignore))
          )
          yield* Effect.logInfo("compensation ran")
        })

      const onFailure = (job: Job, token: string | undefined, payload: unknown, error: JobError) =>
        Effect.gen(function*() {
          const postponements = Math.max(0, job.attemptsStarted - 1 - job.attemptsMade)
          const decision: RetryDecision = yield* decide(config.jobs, error, { attemptsMade: job.attemptsMade, postponements })
          const fields = { jobClass: jobClassOf(error), error: error.message, attempt: job.attemptsMade + 1 }
          switch (decision._tag) {
            case "Retry":
              yield* Effect.logWarning("job attempt failed; it will be retried", { ...fields, retryInMs: Duration.toMillis(decision.delay) })
              return { _tag: "Throw", error: new RetryableJobFailure(error.message, Duration.toMillis(decision.delay)) } as const
            case "Postpone":
              yield* Effect.tryPromise(() => job.moveToDelayed(Date.now() + Duration.toMillis(decision.delay), token))
              yield* Effect.logWarning("job rate limited; postponed without using an attempt", { ...fields, postponedMs: Duration.toMillis(decision.delay) })
              return { _tag: "Throw", error: new DelayedError() } as const
            case "Final":
              yield* deadLetter(job, payload, error, decision.reason)
              yield* Effect.logError("job failed for good; dead-lettered", { ...fields, reason: decision.reason })
              return { _tag: "Throw", error: new UnrecoverableError(`${decision.reason}: ${error.message}`) } as const
          }
        }).pipe(
          // If even the failure path fails (Redis down while dead-lettering), BullMQ retries the job
          // later, and the path runs again: dead-lettering and compensation are both idempotent.
          Effect.catchAllCause((cause) =>
            Effect.logError("job failure handling failed; leaving the job to be retried", cause).pipe(
              Effect.as({ _tag: "Throw", error: new RetryableJobFailure(error.message, 1_000) } as const)
            ))
        )

      const contextOf = (job: Job, payload: P): JobContext => {
        const userId = definition.userIdOf?.(payload)
        return {
          jobId: job.id!,
          attempt: job.attemptsMade + 1,
          progress: (percent, data = {}) =>
            Effect.gen(function*() {
              const body = { percent: Math.max(0, Math.min(100, percent)), ...data }
              yield* Effect.tryPromise(() => job.updateProgress(body))
              if (userId !== undefined) {
                const message = JSON.stringify({ type: "progress", queue, jobId: job.id, ...body })
                yield* redis.use("publish progress", (c) => c.publish(progressChannel(redis.keyPrefix, userId), message))
              }
            }).pipe(Effect.catchAll((error) => Effect.logWarning("progress update failed", { error: String(error) })))
        }
      }

      /** Runs the failure path in its own fiber and turns its outcome into what BullMQ expects. */
      const settle = async (job: Job, outcome: Effect.Effect<Outcome, never, R | AppConfig>): Promise<unknown> => {
        const exit = await awaitExit(runFork(Effect.annotateLogs(outcome, "jobId", job.id ?? "")))
        // Interrupted at the shutdown cap: the job stays active and stalled recovery re-runs it.
        if (Exit.isFailure(exit)) return abandoned ? leftForStalledRecovery() : Promise.reject(new Error("job interrupted by shutdown"))
        if (exit.value._tag === "Throw") throw exit.value.error
        return exit.value.value
      }

      /**
       * One job. The handler is the job's only fiber on the way to success; its time budget is a
       * plain timer that interrupts it (its finalizers run, FFmpeg children are killed). Only a
       * failure, a timeout or a payload that does not decode forks a second fiber, for onFailure.
       */
      const processJob = async (job: Job, token?: string): Promise<unknown> => {
        const decoded = decodePayload(job.data)
        if (Either.isLeft(decoded)) {
          return settle(job, onFailure(job, token, undefined, new JobPermanent({ reason: "the payload did not decode", cause: decoded.left })))
        }
        const payload = decoded.right
        let timedOut = false
        const fiber = runFork(Effect.annotateLogs(handler.run(payload, contextOf(job, payload)), "jobId", job.id ?? ""))
        const timer = setTimeout(() => {
          timedOut = true
          fiber.unsafeInterruptAsFork(FiberId.none)
        }, budgetMs)
        const exit = await awaitExit(fiber)
        clearTimeout(timer)
        if (Exit.isSuccess(exit)) return exit.value
        const interrupted = Cause.isInterruptedOnly(exit.cause)
        // Interrupted at the shutdown cap: the job stays active and stalled recovery re-runs it.
        if (interrupted && !timedOut) return abandoned ? leftForStalledRecovery() : Promise.reject(new Error("job interrupted by shutdown"))
        return settle(job, onFailure(job, token, payload, interrupted ? new JobTimeout({ budget }) : classify(Cause.squash(exit.cause))))
      }

      /**
       * Gives up the active jobs: each is interrupted (its finalizers run, its FFmpeg process group is
       * killed) and its promise to BullMQ never settles, so the job is neither failed nor completed:
       * it stays active, its lock runs out, and stalled recovery hands it to another worker. Then the
       * worker is closed without waiting for jobs. Every wait is bounded.
       */
      const abandonActive = (w: Worker, why: string, closeStarted = false) =>
        Effect.gen(function*() {
          abandoned = true
          const active = yield* FiberSet.size(fibers)
          if (active > 0) {
            yield* Effect.logWarning(`${why}; interrupting active jobs, left for stalled recovery`, { active })
            yield* Effect.sync(() => {
              for (const fiber of fibers) fiber.unsafeInterruptAsFork(FiberId.none)
            })
            const stopped = yield* Effect.interruptible(FiberSet.awaitEmpty(fibers)).pipe(
              Effect.timeoutOption(yield* releaseBudget(INTERRUPT_LIMIT))
            )
            if (Option.isNone(stopped)) {
              yield* Effect.logWarning("some interrupted jobs did not stop in time", { active: yield* FiberSet.size(fibers) })
            }
          }
          // A close() already under way cannot be forced (BullMQ keeps the first); it is abandoned instead.
          if (!closeStarted) yield* awaitWithin(() => w.close(true), FORCE_CLOSE_LIMIT).pipe(Effect.ignore)
        })

      const connection = yield* redis.bullConnection(`worker:${queue}`)
      const worker = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const w = new Worker(
            queue,
            processJob,
            {
              connection,
              prefix: bullPrefix(config),
              concurrency,
              lockDuration: Duration.toMillis(config.jobs.lockDuration),
              stalledInterval: Duration.toMillis(config.jobs.stalledInterval),
              maxStalledCount: 1,
              settings: {
                backoffStrategy: (_attemptsMade: number, _type?: string, error?: Error) =>
                  error instanceof RetryableJobFailure ? error.retryDelayMs : 1_000
              }
            }
          )
          w.on("error", () => undefined) // connection trouble is logged by the connection itself
          return w
        }),
        (w) =>
          releaseStage(
            `worker.close(${queue})`,
            Effect.gen(function*() {
              // Redis is down: active jobs could not report completion anyway, so they are not waited for.
              if (connection.status !== "ready") return yield* abandonActive(w, "redis unavailable at shutdown")
              yield* Effect.sync(() => void w.pause(true).catch(() => undefined)) // stop taking jobs; the active ones go on
              const deadline = Option.flatMap(lifecycle, (l) => Option.fromNullable(l.deadline()))
              const jobsBudgetMs = Option.match(deadline, {
                onNone: () => Duration.toMillis(config.shutdown.timeout),
                onSome: (at) => at - Date.now() - RELEASE_MARGIN_MS
              })
              // awaitEmpty in release code is uninterruptible; made interruptible so the budget is a real bound.
              const drained = yield* Effect.interruptible(FiberSet.awaitEmpty(fibers)).pipe(
                Effect.timeout(Duration.millis(Math.max(0, jobsBudgetMs))),
                Effect.option
              )
              if (Option.isNone(drained)) return yield* abandonActive(w, "active jobs did not finish in time")
              // Every handler has ended; close() also waits for BullMQ to record their results.
              yield* awaitWithin(() => w.close(), CLOSE_LIMIT).pipe(
                Effect.catchAll(() =>
                  Effect.logWarning("worker did not close in time; abandoned").pipe(
                    Effect.zipRight(abandonActive(w, "worker did not close in time", true))
                  ))
              )
            })
          )
      )
      yield* Effect.logInfo("worker started", { queue, concurrency })
      return worker
    })
  )
