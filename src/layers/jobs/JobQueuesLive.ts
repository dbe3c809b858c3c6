import { currentTraceparent } from "../../services/platform/tracing.js"
import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Queue } from "bullmq"
import { Duration, Effect, Layer, Schema } from "effect"
import { AppConfig, type AppConfigShape } from "../../services/platform/AppConfig.js"
import {
  DeadLetter,
  DeadLetterBusy,
  DeadLetterNotFound,
  InvalidJobId,
  JobConflict,
  JobQueues,
  JobQueueUnavailable,
  type QueueCounts,
  UnknownQueue
} from "../../services/jobs/JobQueues.js"
import type { AnyJobDefinition } from "../../services/jobs/JobDefinition.js"
import {
  bullPrefix,
  classFailuresKey,
  compensationQueueName,
  compensationTaskId,
  deadLetterQueueName,
  isValidJobId,
  reservedQueueSuffix
} from "../../services/jobs/queueNames.js"
import { bullAttempts } from "../../services/jobs/retryPolicy.js"
import { awaitWithin, releaseStage } from "../../services/platform/Lifecycle.js"
import { Redis } from "../../services/platform/Redis.js"

/**
 * Lets a just-called `Queue.add` write its command: BullMQ reaches the write after a few promise
 * hops (`await queue.client`, then the script call, synchronously), with no I/O in between once
 * connected. A macrotask (setImmediate) would also do, but under load it waits behind the whole
 * I/O phase, which cost 15% of the enqueue rate at concurrency 10 (bench:jobs). Too few hops only
 * cost the second read in `enqueue`, never correctness.
 */
const addWritten = async () => {
  for (let hop = 0; hop < 8; hop++) await undefined
}

/** Held while an admin call retries or discards one dead letter, so two calls never interleave. */
const adminLockKey = (queue: string, jobId: string) => `jobs:admin-lock:${queue}:${jobId}`
const ADMIN_LOCK_MS = 30_000
const RELEASE_LOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"

// BullMQ's Job.remove says so only in its message (no code).
const isLockedByWorker = (cause: unknown) => cause instanceof Error && cause.message.includes("locked by another worker")

/** The compensation task of a job that failed for good: retried with the capped transient backoff, kept a while after it ran. */
export const compensationOptions = (config: AppConfigShape) => ({
  attempts: config.jobs.compensation.attempts,
  backoff: { type: "lumiku" },
  removeOnComplete: { count: config.jobs.keepCompleted.count, age: Duration.toSeconds(config.jobs.keepCompleted.age) },
  removeOnFail: false
})

/** The retry policy of every job, as BullMQ options; the worker's custom backoff reads the delay it decided. */
export const jobOptions = (config: AppConfigShape) => ({
  attempts: bullAttempts(config.jobs),
  backoff: { type: "lumiku" },
  removeOnComplete: { count: config.jobs.keepCompleted.count, age: Duration.toSeconds(config.jobs.keepCompleted.age) },
  removeOnFail: { count: config.jobs.keepFailed.count, age: Duration.toSeconds(config.jobs.keepFailed.age) }
})

const toDeadLetter = Schema.decodeUnknownSync(DeadLetter)

/** Warns loudly when Redis may evict keys: BullMQ's locks and jobs would silently disappear. */
const checkEvictionPolicy = Effect.gen(function*() {
  const redis = yield* Redis
  const reply = yield* redis.use("config get", (c) => c.config("GET", "maxmemory-policy") as Promise<Array<string>>)
  const policy = reply[1] ?? "unknown"
  if (policy !== "noeviction") {
    yield* Effect.logError("redis maxmemory-policy is not noeviction: BullMQ jobs and locks can be evicted; set maxmemory-policy noeviction", { policy })
  }
}).pipe(Effect.catchAll((error) => Effect.logWarning("could not read redis maxmemory-policy", { error: error.message })))

/**
 * Keeps the job scheduler of each periodic definition (upsertJobScheduler is idempotent, so every
 * process may do it at startup; the interval follows the configuration of the last one started).
 * Redis being down here is not fatal: the next process start schedules it again.
 */
const scheduleRepeats = (
  definitions: ReadonlyArray<AnyJobDefinition>,
  queues: ReadonlyMap<string, { readonly main: Queue }>,
  config: AppConfigShape,
  options: ReturnType<typeof jobOptions>
) =>
  Effect.forEach(definitions, (definition) => {
    const repeat = definition.repeat
    const queue = queues.get(definition.queue)?.main
    if (repeat === undefined || queue === undefined) return Effect.void
    const every = Duration.toMillis(repeat.every(config))
    return Effect.tryPromise(async () => {
      const data = Schema.encodeSync(definition.payload)(repeat.payload)
      const { attempts, backoff, removeOnComplete, removeOnFail } = options
      await queue.upsertJobScheduler(definition.queue, { every }, {
        name: definition.queue,
        data,
        opts: { attempts, backoff, removeOnComplete, removeOnFail }
      })
    }).pipe(
      // BullMQ waits for a connection that may never come; startup does not wait with it.
      Effect.timeout(config.redis.commandTimeout),
      Effect.tap(() => Effect.logInfo("periodic job scheduled", { queue: definition.queue, everyMs: every })),
      Effect.catchAll((error) => Effect.logError("periodic job could not be scheduled", { queue: definition.queue, error: String(error) }))
    )
  }, { discard: true })

/**
 * The producer side of every registered queue, plus each queue's dead-letter and compensation
 * queues. Owns one producer connection and the BullMQ Queue objects: the queues are closed (at most
 * 2 s each, a real bound), then the connection is quit, when the layer is released (after the workers
 * and the HTTP server that use them).
 */
export const makeJobQueuesLive = (definitions: ReadonlyArray<AnyJobDefinition>) =>
  Layer.scoped(
    JobQueues,
    Effect.gen(function*() {
      // A definition that bypassed defineJob: a name like "mail-dlq" would consume another queue's dead letters.
      for (const { queue } of definitions) {
        const reserved = reservedQueueSuffix(queue)
        if (reserved !== undefined) return yield* Effect.dieMessage(`job queue "${queue}" ends in "${reserved}", which is reserved`)
      }
      const config = yield* AppConfig
      const redis = yield* Redis
      yield* checkEvictionPolicy
      const connection = yield* redis.bullConnection("producer", { producer: true })
      const prefix = bullPrefix(config)
      const open = (name: string) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const queue = new Queue(name, { connection, prefix })
            queue.on("error", () => undefined) // failures surface on each call; the connection logs its state
            return queue
          }),
          (queue) =>
            releaseStage(
              `queue.close(${name})`,
              // With Redis gone there is nothing to flush, and close() would wait for it.
              connection.status === "ready"
                ? awaitWithin(() => queue.close(), Duration.seconds(2)).pipe(Effect.ignore)
                : Effect.void
            )
        )
      const queues = new Map<
        string,
        { readonly main: Queue; readonly dlq: Queue; readonly compensation: Queue; readonly definition: AnyJobDefinition }
      >()
      for (const definition of definitions) {
        if (queues.has(definition.queue)) return yield* Effect.dieMessage(`job queue "${definition.queue}" is defined twice`)
        queues.set(definition.queue, {
          main: yield* open(definition.queue),
          dlq: yield* open(deadLetterQueueName(definition.queue)),
          compensation: yield* open(compensationQueueName(definition.queue)),
          definition
        })
      }
      // A retry guard reads the database: optional, so a process without one can run plain job kinds.
      const sqlClient = yield* Effect.serviceOption(SqlClient.SqlClient)
      const guarded = definitions.find((d) => d.refuseRetry !== undefined)
      if (guarded !== undefined && sqlClient._tag === "None") {
        return yield* Effect.dieMessage(`job queue "${guarded.queue}" has a retry guard, which needs the database`)
      }
      /** Why the job kind refuses to retry this dead letter, if it does. */
      const retryRefusal = (queue: string, definition: AnyJobDefinition, jobId: string) =>
        definition.refuseRetry === undefined || sqlClient._tag === "None"
          ? Effect.succeed<string | undefined>(undefined)
          : definition.refuseRetry(jobId).pipe(
            Effect.provideService(SqlClient.SqlClient, sqlClient.value),
            Effect.mapError((cause) => new JobQueueUnavailable({ queue, cause }))
          )
      const options = jobOptions(config)
      const compensationOpts = compensationOptions(config)
      yield* scheduleRepeats(definitions, queues, config, options)

      // BullMQ waits for its connection to be ready before it even sends a command, so the producer
      // connection's fail-fast settings are not enough: each call is also bounded here.
      // (A plain timer: Effect.timeoutFail races two fibers, about 35 us per call.)
      const deadlineMs = Duration.toMillis(config.redis.commandTimeout)
      const call = <A>(queue: string, f: () => Promise<A>) =>
        Effect.tryPromise({
          try: () =>
            new Promise<A>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error("timed out waiting for Redis")), deadlineMs)
              f().then(resolve, reject).finally(() => clearTimeout(timer))
            }),
          catch: (cause) => new JobQueueUnavailable({ queue, cause })
        })
      /** Like `call`, but a job locked by a worker is DeadLetterBusy (409), not an outage. */
      const callUnlessLocked = <A>(queue: string, jobId: string, f: () => Promise<A>) =>
        call(queue, f).pipe(
          Effect.catchTag("JobQueueUnavailable", (error): Effect.Effect<never, JobQueueUnavailable | DeadLetterBusy> =>
            isLockedByWorker(error.cause)
              ? Effect.fail(new DeadLetterBusy({ queue, jobId, reason: "its job is locked by another worker" }))
              : Effect.fail(error))
        )
      const lookup = (queue: string) => {
        const found = queues.get(queue)
        return found === undefined ? Effect.fail(new UnknownQueue({ queue })) : Effect.succeed(found)
      }
      const deadLetterJob = (queue: string, jobId: string) =>
        Effect.flatMap(lookup(queue), ({ dlq }) =>
          call(queue, () => dlq.getJob(jobId)).pipe(
            Effect.flatMap((job) => (job === undefined ? Effect.fail(new DeadLetterNotFound({ queue, jobId })) : Effect.succeed(job)))
          ))

      const countsOf = (name: string, { compensation, dlq, main }: { readonly main: Queue; readonly dlq: Queue; readonly compensation: Queue }) =>
        call(name, async (): Promise<QueueCounts> => {
          const [counts, dead, compensations] = await Promise.all([
            main.getJobCounts("waiting", "active", "delayed", "failed", "prioritized"),
            dlq.getJobCounts("waiting"),
            compensation.getJobCounts("waiting", "active", "delayed", "failed")
          ])
          return {
            waiting: (counts["waiting"] ?? 0) + (counts["prioritized"] ?? 0),
            active: counts["active"] ?? 0,
            delayed: counts["delayed"] ?? 0,
            failed: counts["failed"] ?? 0,
            deadLettered: dead["waiting"] ?? 0,
            compensationPending: (compensations["waiting"] ?? 0) + (compensations["active"] ?? 0) + (compensations["delayed"] ?? 0),
            compensationFailed: compensations["failed"] ?? 0
          }
        })

      /**
       * Runs one admin operation on a dead letter while holding its lock (SET NX with a token and an
       * expiry; released only by its holder), so concurrent retries and discards give one outcome:
       * the others answer DeadLetterBusy, or DeadLetterNotFound once the first has finished.
       */
      const exclusively = <A, E>(queue: string, jobId: string, operation: Effect.Effect<A, E>) =>
        Effect.acquireUseRelease(
          Effect.gen(function*() {
            const token = randomUUID()
            const taken = yield* redis.use("take admin lock", (c) => c.set(adminLockKey(queue, jobId), token, "PX", ADMIN_LOCK_MS, "NX")).pipe(
              Effect.mapError((cause) => new JobQueueUnavailable({ queue, cause }))
            )
            if (taken === null) return yield* new DeadLetterBusy({ queue, jobId, reason: "another admin call is handling it" })
            return token
          }),
          () => operation,
          (token) => redis.use("release admin lock", (c) => c.eval(RELEASE_LOCK, 1, adminLockKey(queue, jobId), token)).pipe(Effect.ignore)
        )

      /**
       * Removes the dead letter's compensation task once it has run (completed, or failed for good).
       * A compensation still to run refuses: retrying or discarding must not race it.
       */
      const clearCompensation = (queue: string, letter: DeadLetter) =>
        Effect.flatMap(lookup(queue), ({ compensation }) =>
          Effect.gen(function*() {
            const jobId = letter.jobId
            const task = yield* call(queue, () => compensation.getJob(compensationTaskId(letter)))
            if (task === undefined) return
            const state = yield* call(queue, () => task.getState())
            if (state !== "completed" && state !== "failed") {
              return yield* new DeadLetterBusy({ queue, jobId, reason: "its compensation has not finished" })
            }
            yield* callUnlessLocked(queue, jobId, () => task.remove())
          }))

      return JobQueues.of({
        queueNames: [...queues.keys()],
        // Untraced: the span and its stack capture cost more than the rest of the call.
        enqueue: Effect.fnUntraced(function*(definition, jobId, payload, enqueueOptions) {
          if (!isValidJobId(jobId)) return yield* new InvalidJobId({ jobId })
          const { main } = yield* Effect.orDie(lookup(definition.queue))
          const encoded = yield* Schema.encode(definition.payload)(payload).pipe(Effect.orDie)
          // BullMQ answers an existing id exactly like a new job; the stored payload tells them apart.
          // The read is sent right behind the add's command (the queue shares this connection, and
          // Redis runs one connection's commands in order), so both take one round trip. A read that
          // found nothing ran before the add (the add was not written yet: a NOSCRIPT retry, a
          // connection still connecting): it is repeated after the add. Either way every caller compares with the
          // payload of whichever caller created the job.
          const key = main.toKey(jobId)
          // The request's trace continues in the job (workers/jobs/runtime.ts): in BullMQ's own
          // propagation field, outside the payload the conflict check compares.
          const traceparent = yield* currentTraceparent
          const jobOptions = traceparent === undefined ? { ...options, jobId } : { ...options, jobId, telemetry: { metadata: traceparent } }
          if (enqueueOptions?.fresh === true) {
            yield* call(definition.queue, () => main.add(definition.queue, encoded, jobOptions))
            return { jobId }
          }
          const stored = yield* call(definition.queue, async () => {
            const adding = main.add(definition.queue, encoded, jobOptions)
            await addWritten()
            // Not ready yet (BullMQ waits for that, a fail-fast connection does not): read again after.
            const early = connection.hget(key, "data").catch(() => null)
            await adding
            return (await early) ?? connection.hget(key, "data")
          })
          if (stored !== null && stored !== JSON.stringify(encoded)) return yield* new JobConflict({ queue: definition.queue, jobId })
          return { jobId }
        }),
        remove: Effect.fn("JobQueues.remove")(function*(queue, jobId) {
          const { main } = yield* lookup(queue)
          return yield* call(queue, async () => {
            const job = await main.getJob(jobId)
            if (job === undefined) return false
            const state = await job.getState()
            if (state !== "waiting" && state !== "delayed" && state !== "prioritized") return false
            // A worker may take it between the two calls: then it is its worker's, not removed.
            return job.remove().then(() => true, (cause: unknown) => isLockedByWorker(cause) ? false : Promise.reject(cause))
          })
        }),
        counts: Effect.forEach([...queues], ([name, pair]) => Effect.map(countsOf(name, pair), (c) => [name, c] as const), {
          concurrency: "unbounded"
        }).pipe(Effect.map(Object.fromEntries)),
        deadLetters: {
          list: Effect.fn("JobQueues.deadLetters.list")(function*(queue, page) {
            const { dlq } = yield* lookup(queue)
            const [jobs, total] = yield* call(queue, () =>
              Promise.all([dlq.getJobs(["waiting"], page.offset, page.offset + page.limit - 1, true), dlq.getWaitingCount()]))
            return { items: jobs.filter((j) => j !== undefined).map((j) => toDeadLetter(j.data)), total }
          }),
          get: Effect.fn("JobQueues.deadLetters.get")(function*(queue, jobId) {
            const job = yield* deadLetterJob(queue, jobId)
            return toDeadLetter(job.data)
          }),
          retry: Effect.fn("JobQueues.deadLetters.retry")(function*(queue, jobId) {
            const { definition, main } = yield* lookup(queue)
            yield* exclusively(queue, jobId, Effect.gen(function*() {
              const letter = yield* deadLetterJob(queue, jobId)
              const refusal = yield* retryRefusal(queue, definition, jobId)
              if (refusal !== undefined) return yield* new DeadLetterBusy({ queue, jobId, reason: refusal })
              yield* clearCompensation(queue, toDeadLetter(letter.data))
              // In this order, so a call cut short is safe to repeat: the failed original goes (a
              // job still locked by a worker is a 409), the failure counts are reset, the job comes
              // back fresh, and only then is the dead letter removed.
              yield* callUnlessLocked(queue, jobId, async () => {
                const original = await main.getJob(jobId)
                if (original !== undefined) await original.remove()
              })
              yield* redis.use("reset failure counts", (c) => c.del(classFailuresKey(queue, jobId))).pipe(
                Effect.mapError((cause) => new JobQueueUnavailable({ queue, cause }))
              )
              yield* call(queue, () => main.add(queue, (letter.data as DeadLetter).payload, { ...options, jobId }))
              yield* callUnlessLocked(queue, jobId, () => letter.remove())
            }))
            yield* Effect.logInfo("dead letter re-enqueued", { queue, jobId })
          }),
          discard: Effect.fn("JobQueues.deadLetters.discard")(function*(queue, jobId) {
            yield* lookup(queue)
            yield* exclusively(queue, jobId, Effect.gen(function*() {
              const letter = yield* deadLetterJob(queue, jobId)
              yield* clearCompensation(queue, toDeadLetter(letter.data))
              yield* callUnlessLocked(queue, jobId, () => letter.remove())
            }))
            yield* Effect.logInfo("dead letter discarded", { queue, jobId })
          }),
          record: Effect.fn("JobQueues.deadLetters.record")(function*(letter, { compensate }) {
            const { compensation, dlq } = yield* lookup(letter.queue)
            yield* call(letter.queue, async () => {
              // A letter left by an earlier job under this id is superseded by this one's.
              const existing = await dlq.getJob(letter.jobId)
              if (existing !== undefined && (existing.data as DeadLetter).enqueuedAt !== letter.enqueuedAt) await existing.remove()
              await dlq.add(letter.queue, letter, { jobId: letter.jobId, removeOnComplete: true })
            })
            if (compensate) {
              yield* call(letter.queue, () => compensation.add(letter.queue, letter, { ...compensationOpts, jobId: compensationTaskId(letter) }))
            }
          })
        }
      })
    })
  )
