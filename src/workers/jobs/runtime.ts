import { DelayedError, type Job, UnrecoverableError, Worker } from "bullmq"
import { Cause, Duration, Effect, Either, Exit, type Fiber, FiberId, FiberSet, Layer, Metric, Option, Schedule, Schema, Scope } from "effect"
import { bullPrefix, classFailuresKey, progressChannel } from "../../services/jobs/queueNames.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { type DeadLetter, JobQueues } from "../../services/jobs/JobQueues.js"
import { classify } from "../../services/jobs/classify.js"
import { jobsDeadLettered, recordJobRun } from "../../services/jobs/metrics.js"
import type { AppServices, JobDefinition } from "../../services/jobs/JobDefinition.js"
import { type JobClass, type JobError, jobClassOf, JobPermanent, JobTimeout, JobTransient } from "../../services/jobs/JobError.js"
import { decide, type RetryDecision } from "../../services/jobs/retryPolicy.js"
import { awaitWithin, Lifecycle, releaseBudget, releaseStage } from "../../services/platform/Lifecycle.js"
import { Redis } from "../../services/platform/Redis.js"
import { parentFromTraceparent } from "../../services/platform/tracing.js"

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
  readonly jobClass: JobClass
  readonly reason: string
  readonly lastError: { readonly tag: string; readonly message: string }
  /** The payload as it was enqueued (encoded). */
  readonly encodedPayload: unknown
}

export interface JobHandler<P, I, R> {
  readonly definition: JobDefinition<P, I>
  /**
   * The work: at least once per job (a worker that dies mid-job means another run), never again
   * once the job has failed for good. Any failure is classified (see classify.ts); typed JobErrors
   * are taken as they are.
   */
  readonly run: (payload: P, context: JobContext) => Effect.Effect<unknown, unknown, R>
  /**
   * Runs when the job fails for good (never on a failure that will be retried), as its own durable
   * step (`workers/compensation.ts`): retried until it succeeds, within its own time limit, and
   * again after a crash mid-run. So it must be idempotent (the ledger's refund is, by key); in
   * effect it happens exactly once.
   */
  readonly compensate?: (payload: P, failure: FinalFailure) => Effect.Effect<void, unknown, R>
  /**
   * Compensation for a job whose payload no longer decodes (a schema changed while it waited):
   * given the encoded payload. Without it such a compensation fails for good, logged, and stays in
   * `<queue>-compensate` for an operator.
   */
  readonly compensateUndecodable?: (encodedPayload: unknown, failure: FinalFailure) => Effect.Effect<void, unknown, R>
}

// `any`: a registry holds handlers of every payload type; each handler is typed where it is defined.
export type AnyJobHandler = JobHandler<any, any, WorkerServices>

/** What a job handler may use: everything the app layer provides. */
export type WorkerServices = AppServices

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

export { progressChannel }

/** How many times a job may stall (its worker died or lost Redis) and run again; the next delivery dead-letters it. */
export const MAX_STALLS = 1

/** BullMQ's own stall limit, out of the way: past it BullMQ fails a job without calling our processor. */
const BULL_MAX_STALLED_COUNT = 1_000

/** A progress update that has not finished in this time is dropped (with a warning), never waited for. */
export const PROGRESS_BUDGET_MS = 250

/** Redis writes of the failure path: retried until they succeed (or shutdown interrupts them), at most 5 s apart. */
const durableRetry = Schedule.exponential(Duration.millis(200)).pipe(
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(5)))
)

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

      // Set by the finalizer below, which runs before the worker's release: from then on an
      // interrupted handler was interrupted by the shutdown.
      let shuttingDown = false

      /** A write the failure path cannot skip: retried until it succeeds; only shutdown interrupts it. */
      const durably = <A, E>(what: string, effect: Effect.Effect<A, E>): Effect.Effect<A> =>
        effect.pipe(
          Effect.tapError((error) => Effect.logWarning(`${what} failed; retrying`, { error: String(error) })),
          Effect.retry(durableRetry),
          Effect.orDie // unreachable: the schedule never ends
        )

      const failureCountsTtlMs = Duration.toMillis(config.jobs.keepFailed.age)
      /** Counts this failure against its class' budget; answers how many failures of this class the job has had. */
      const countFailure = (job: Job, jobClass: JobClass) =>
        durably(
          "counting the job's failure",
          redis.use("count job failure", async (c) => {
            const key = classFailuresKey(queue, job.id!)
            const replies = await c.multi().hincrby(key, jobClass, 1).pexpire(key, failureCountsTtlMs).exec()
            return Number(replies?.[0]?.[1] ?? 1)
          })
        )

      const letterOf = (job: Job, error: JobError, reason: string, attemptsMade: number): DeadLetter => ({
        queue,
        jobId: job.id!,
        payload: job.data,
        jobClass: jobClassOf(error),
        reason,
        lastError: { tag: error._tag, message: error.message },
        attemptsMade,
        attemptsStarted: job.attemptsStarted,
        enqueuedAt: new Date(job.timestamp).toISOString(),
        lastAttemptAt: job.processedOn === undefined ? null : new Date(job.processedOn).toISOString(),
        deadLetteredAt: new Date().toISOString()
      })

      /**
       * The job has failed for good. Its dead letter and its compensation task are written (each
       * idempotent by job id, retried until Redis takes them) before BullMQ is told, so a crash in
       * between only means this path runs again on the next delivery, never the handler.
       * Compensation runs later, in `<queue>-compensate`'s worker.
       */
      const terminal = (letter: DeadLetter) =>
        Effect.gen(function*() {
          yield* durably("recording the dead letter", queues.deadLetters.record(letter, { compensate: handler.compensate !== undefined }))
          yield* Metric.increment(Metric.tagged(Metric.tagged(jobsDeadLettered, "queue", queue), "error_class", letter.jobClass))
          yield* Effect.logError("job failed for good; dead-lettered", {
            jobClass: letter.jobClass,
            reason: letter.reason,
            error: letter.lastError.message,
            attempt: letter.attemptsMade
          })
          return { _tag: "Throw", error: new UnrecoverableError(`${letter.reason}: ${letter.lastError.message}`) } as const
        })

      /** A job delivered again after it failed for good (a crash before BullMQ recorded it): its dead letter, if so. */
      const deadLetterOf = (job: Job) =>
        durably(
          "looking up the dead letter",
          queues.deadLetters.get(queue, job.id!).pipe(
            Effect.map(Option.some),
            Effect.catchTag("DeadLetterNotFound", () => Effect.succeed(Option.none<DeadLetter>()))
          )
        ).pipe(
          Effect.map(Option.filter((letter) => letter.enqueuedAt === new Date(job.timestamp).toISOString()))
        )

      const onFailure = (job: Job, token: string | undefined, error: JobError) =>
        Effect.gen(function*() {
          const jobClass = jobClassOf(error)
          const classFailures = jobClass === "permanent" ? 1 : yield* countFailure(job, jobClass)
          let decision: RetryDecision = yield* decide(config.jobs, error, { classFailures })
          // BullMQ's own attempts are sized above every class budget; should a job reach them anyway
          // (attempts set by hand, shutdowns), it is dead-lettered here rather than dropped by BullMQ.
          const bullAttempts = job.opts.attempts ?? 1
          if (decision._tag === "Retry" && job.attemptsMade + 1 >= bullAttempts) {
            decision = { _tag: "Final", reason: `${bullAttempts} attempts exhausted` }
          }
          const fields = { jobClass, error: error.message, attempt: job.attemptsMade + 1, classFailures }
          switch (decision._tag) {
            case "Retry":
              yield* Effect.logWarning("job attempt failed; it will be retried", { ...fields, retryInMs: Duration.toMillis(decision.delay) })
              return { _tag: "Throw", error: new RetryableJobFailure(error.message, Duration.toMillis(decision.delay)) } as const
            case "Postpone": {
              const delayMs = Duration.toMillis(decision.delay)
              return yield* Effect.tryPromise(() => job.moveToDelayed(Date.now() + delayMs, token)).pipe(
                Effect.zipRight(Effect.logWarning("job rate limited; postponed without using an attempt", { ...fields, postponedMs: delayMs })),
                Effect.as({ _tag: "Throw", error: new DelayedError() } as const),
                // Not postponed (Redis trouble): an ordinary retry after the same delay instead.
                Effect.catchAllCause((cause) =>
                  Effect.logWarning("could not postpone the job; retrying it instead", cause).pipe(
                    Effect.as({ _tag: "Throw", error: new RetryableJobFailure(error.message, delayMs) } as const)
                  ))
              )
            }
            case "Final":
              return yield* terminal(letterOf(job, error, decision.reason, job.attemptsMade + 1))
          }
        })

      const contextOf = (job: Job, payload: P): JobContext => {
        const userId = definition.userIdOf?.(payload)
        let progressPending = false
        return {
          jobId: job.id!,
          attempt: job.attemptsMade + 1,
          progress: (percent, data = {}) =>
            Effect.suspend(() => {
              // Bounded: a Redis that does not answer never holds the job up. While one update is
              // still out, further ones are dropped rather than queued behind it.
              if (progressPending) return Effect.logWarning("progress update dropped; the previous one has not finished", { percent })
              const body = { percent: Math.max(0, Math.min(100, percent)), ...data }
              const update = (async () => {
                await job.updateProgress(body)
                if (userId !== undefined) {
                  const message = JSON.stringify({ type: "progress", queue, jobId: job.id, ...body })
                  await redis.client.publish(progressChannel(redis.keyPrefix, userId), message)
                }
              })()
              progressPending = true
              const settled = update.then(() => "done" as const, (error: unknown) => error)
              void settled.then(() => {
                progressPending = false
              })
              let timer: ReturnType<typeof setTimeout> | undefined
              const budget = new Promise<"timeout">((resolve) => {
                timer = setTimeout(() => resolve("timeout"), PROGRESS_BUDGET_MS)
              })
              return Effect.promise(() => Promise.race([settled, budget]).finally(() => clearTimeout(timer))).pipe(
                Effect.flatMap((outcome) =>
                  outcome === "done"
                    ? Effect.void
                    : outcome === "timeout"
                    ? Effect.logWarning("progress update dropped; redis did not answer in time", { percent, budgetMs: PROGRESS_BUDGET_MS })
                    : Effect.logWarning("progress update failed", { percent, error: String(outcome) }))
              )
            })
        }
      }

      /**
       * A job enqueued inside a recorded trace continues it: the handler runs in a span whose parent
       * is the enqueuing span (its traceparent in the job's options). Other jobs get no span at all.
       */
      const traced = <A, E, R2>(job: Job, effect: Effect.Effect<A, E, R2>): Effect.Effect<A, E, R2> =>
        Option.match(parentFromTraceparent(job.opts.telemetry?.metadata), {
          onNone: () => effect,
          onSome: (parent) =>
            Effect.withSpan(effect, `job ${queue}`, {
              parent,
              kind: "consumer",
              attributes: { "messaging.system": "bullmq", "messaging.destination.name": queue, "messaging.message.id": job.id ?? "" }
            })
        })

      /** Runs the failure path in its own fiber and turns its outcome into what BullMQ expects. */
      const settle = async (job: Job, outcome: Effect.Effect<Outcome, never, R | AppConfig>): Promise<unknown> => {
        const exit = await awaitExit(runFork(Effect.annotateLogs(outcome, "jobId", job.id ?? "")))
        // Interrupted at the shutdown cap: the job stays active and stalled recovery re-runs it.
        if (Exit.isFailure(exit)) return abandoned ? leftForStalledRecovery() : Promise.reject(new Error("job interrupted by shutdown"))
        if (exit.value._tag === "Throw") throw exit.value.error
        return exit.value.value
      }

      /** Runs the failure path of a job that will not run its handler (again). */
      const settleWithout = (job: Job, error: JobError, reason: string) =>
        settle(job, terminal(letterOf(job, error, reason, job.attemptsMade)))

      /**
       * One job. The handler is the job's only fiber on the way to success; its time budget is a
       * plain timer that interrupts it (its finalizers run, FFmpeg children are killed). Only a
       * failure, a timeout or a payload that does not decode forks a second fiber, for onFailure.
       * A job that has failed for good (or stalled past MAX_STALLS) never runs its handler again.
       */
      const processJob = async (job: Job, token?: string): Promise<unknown> => {
        if (job.stalledCounter > MAX_STALLS) {
          const error = new JobTransient({ reason: `its worker stopped (stalled) ${job.stalledCounter} times` })
          return settleWithout(job, error, `stalled ${job.stalledCounter} times`)
        }
        // Only a job delivered again can have failed for good already: one lookup, never on a first run.
        if (job.attemptsStarted > 1) {
          const letter = await awaitExit(runFork(deadLetterOf(job)))
          if (Exit.isFailure(letter)) throw new Error("job interrupted by shutdown")
          if (Option.isSome(letter.value)) return settle(job, terminal(letter.value.value))
        }
        const decoded = decodePayload(job.data)
        if (Either.isLeft(decoded)) {
          return settle(job, onFailure(job, token, new JobPermanent({ reason: "the payload did not decode", cause: decoded.left })))
        }
        const payload = decoded.right
        let timedOut = false
        const started = performance.now()
        const fiber = runFork(Effect.annotateLogs(traced(job, handler.run(payload, contextOf(job, payload))), "jobId", job.id ?? ""))
        const timer = setTimeout(() => {
          timedOut = true
          fiber.unsafeInterruptAsFork(FiberId.none)
        }, budgetMs)
        const exit = await awaitExit(fiber)
        clearTimeout(timer)
        if (Exit.isSuccess(exit)) {
          recordJobRun(queue, "completed", "none", performance.now() - started)
          // A job that failed before: its failure counts are no longer needed (best effort; they expire).
          if (job.attemptsStarted > 1) void redis.client.del(classFailuresKey(queue, job.id!)).catch(() => undefined)
          return exit.value
        }
        const interrupted = Cause.isInterruptedOnly(exit.cause)
        // Interrupted at the shutdown cap: the job stays active and stalled recovery re-runs it.
        // Given up at the shutdown cap (abandonActive): never settled, so stalled recovery re-runs it.
        if (interrupted && !timedOut && abandoned) return leftForStalledRecovery()
        if (interrupted && !timedOut && shuttingDown) throw new Error("job interrupted by shutdown")
        const error: JobError = !interrupted
          ? classify(Cause.squash(exit.cause))
          : timedOut
          ? new JobTimeout({ budget })
          // Interrupted by neither its budget nor the shutdown (its own code, say): a failure like any other.
          : new JobTransient({ reason: "the handler was interrupted" })
        recordJobRun(queue, "failed", jobClassOf(error), performance.now() - started)
        return settle(job, onFailure(job, token, error))
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
              maxStalledCount: BULL_MAX_STALLED_COUNT,
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
      yield* Effect.addFinalizer(() => Effect.sync(() => {
        shuttingDown = true
      }))
      yield* Effect.logInfo("worker started", { queue, concurrency })
      return worker
    })
  )
