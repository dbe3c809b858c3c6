import { type Job, UnrecoverableError, Worker } from "bullmq"
import { Cause, Duration, Effect, Either, Exit, type Fiber, FiberId, Layer, Option, Runtime, Schema } from "effect"
import { bullPrefix, compensationQueueName } from "../../services/jobs/queueNames.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import type { DeadLetter } from "../../services/jobs/JobQueues.js"
import { cappedExponential, nthDelay } from "../../services/jobs/retryPolicy.js"
import { awaitWithin, releaseStage } from "../../services/platform/Lifecycle.js"
import { Redis } from "../../services/platform/Redis.js"
import type { FinalFailure, JobHandler } from "./runtime.js"

const CLOSE_LIMIT = Duration.seconds(1)

/** Past BullMQ's stall limit a task would be failed without running: compensation must run, so it is out of the way. */
const BULL_MAX_STALLED_COUNT = 1_000

/** Thrown for a compensation that cannot succeed by running again (its payload does not decode). */
class CompensationImpossible extends UnrecoverableError {}

/**
 * Runs one queue's compensations: the tasks in `<queue>-compensate`, one per job that failed for
 * good (written with its dead letter, see runtime.ts). Separate from the job's own worker, so a
 * compensation never re-runs the handler, never holds a job slot, and survives a crash: a worker
 * killed mid-compensation leaves the task active, and BullMQ's stalled recovery runs it again in
 * another worker. A task completes only after `compensate` succeeded, within its own time limit
 * (`JOB_COMPENSATION_TIMEOUT`); a failure or a timeout is retried with the capped transient backoff
 * up to `JOB_COMPENSATION_ATTEMPTS` runs, then left failed (logged as an error) for an operator.
 *
 * Owns the worker and its Redis connection. On release, running compensations are interrupted (not
 * awaited: stalled recovery runs them again) and the worker is closed without waiting for them,
 * bounded at 1 s; then the connection is quit by its own scope.
 */
export const makeCompensationWorker = <P, I, R>(handler: JobHandler<P, I, R>) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const config = yield* AppConfig
      const redis = yield* Redis
      const { compensate, compensateUndecodable, definition } = handler
      if (compensate === undefined) return
      const name = compensationQueueName(definition.queue)
      const timeoutMs = Duration.toMillis(config.jobs.compensation.timeout)
      const decodePayload = Schema.decodeUnknownEither(definition.payload)
      const runtime = yield* Effect.runtime<R>()
      const running = new Set<Fiber.RuntimeFiber<void, unknown>>()
      const logged = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect.pipe(Effect.annotateLogs("queue", definition.queue)))

      /** Runs the compensation as a fiber with a plain timer as its limit: a hung one is interrupted and abandoned, never awaited. */
      const runBounded = (job: Job<DeadLetter>, effect: Effect.Effect<void, unknown, R>) =>
        new Promise<void>((resolve, reject) => {
          const fiber = Runtime.runFork(runtime)(
            effect.pipe(Effect.annotateLogs({ queue: definition.queue, jobId: job.data.jobId, step: "compensation" }))
          )
          running.add(fiber)
          const timer = setTimeout(() => {
            fiber.unsafeInterruptAsFork(FiberId.none)
            reject(new Error(`compensation exceeded its ${timeoutMs} ms limit`))
          }, timeoutMs)
          fiber.addObserver((exit) => {
            running.delete(fiber)
            clearTimeout(timer)
            if (Exit.isSuccess(exit)) resolve()
            else {
              const failure = Cause.squash(exit.cause)
              reject(new Error(failure instanceof Error ? failure.message : String(failure)))
            }
          })
        })

      const processTask = async (job: Job<DeadLetter>): Promise<void> => {
        const letter = job.data
        const failure: FinalFailure = {
          jobId: letter.jobId,
          jobClass: letter.jobClass,
          reason: letter.reason,
          lastError: letter.lastError,
          encodedPayload: letter.payload
        }
        const decoded = decodePayload(letter.payload)
        const effect = Either.isRight(decoded)
          ? compensate(decoded.right, failure)
          : compensateUndecodable?.(letter.payload, failure)
        if (effect === undefined) throw new CompensationImpossible("the payload does not decode and the handler has no compensateUndecodable")
        await runBounded(job, effect)
        logged(Effect.logInfo("compensation ran", { jobId: letter.jobId, run: job.attemptsStarted }))
      }

      const connection = yield* redis.bullConnection(`worker:${name}`)
      const backoff = cappedExponential(config.jobs)
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const w = new Worker<DeadLetter>(name, processTask, {
            connection,
            prefix: bullPrefix(config),
            concurrency: 1,
            lockDuration: Duration.toMillis(config.jobs.lockDuration),
            stalledInterval: Duration.toMillis(config.jobs.stalledInterval),
            maxStalledCount: BULL_MAX_STALLED_COUNT,
            settings: {
              backoffStrategy: (attemptsMade: number) =>
                Option.match(Effect.runSync(nthDelay(backoff, Math.max(1, attemptsMade))), {
                  onNone: () => Duration.toMillis(config.jobs.transientMaxDelay),
                  onSome: Duration.toMillis
                })
            }
          })
          w.on("error", () => undefined) // connection trouble is logged by the connection itself
          w.on("failed", (job, error) => {
            if (job === undefined) return
            const final = error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1)
            const fields = { jobId: job.data.jobId, task: job.id ?? "", run: job.attemptsMade, error: error.message }
            logged(
              final
                ? Effect.logError("compensation failed for good; it stays in the compensation queue for an operator", fields)
                : Effect.logWarning("compensation failed; it will be retried", fields)
            )
          })
          return w
        }),
        (w) =>
          releaseStage(
            `worker.close(${name})`,
            Effect.sync(() => {
              for (const fiber of running) fiber.unsafeInterruptAsFork(FiberId.none)
            }).pipe(
              // close(true) does not wait for active tasks; the wait for it is a real bound (see awaitWithin).
              Effect.zipRight(awaitWithin(() => w.close(true), CLOSE_LIMIT)),
              Effect.catchAll(() => Effect.logWarning("compensation worker did not close in time; abandoned"))
            )
          )
      )
      yield* Effect.logInfo("compensation worker started", { queue: name })
    })
  )
