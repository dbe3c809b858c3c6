import { Queue } from "bullmq"
import { Duration, Effect, Layer, Schema } from "effect"
import { AppConfig, type AppConfigShape } from "../services/AppConfig.js"
import {
  DeadLetter,
  DeadLetterNotFound,
  InvalidJobId,
  JobQueues,
  JobQueueUnavailable,
  type QueueCounts,
  UnknownQueue
} from "../services/JobQueues.js"
import type { AnyJobDefinition } from "../services/jobs/JobDefinition.js"
import { bullAttempts } from "../services/jobs/retryPolicy.js"
import { awaitWithin, releaseStage } from "../services/Lifecycle.js"
import { Redis } from "../services/Redis.js"

/** BullMQ's key prefix for this deployment: under the Redis key prefix, so test runs stay apart. */
export const bullPrefix = (config: AppConfigShape) => `${config.redis.keyPrefix}bull`

export const deadLetterQueueName = (queue: string) => `${queue}-dlq`

/** The retry policy of every job, as BullMQ options; the worker's custom backoff reads the delay it decided. */
export const jobOptions = (config: AppConfigShape) => ({
  attempts: bullAttempts(config.jobs),
  backoff: { type: "lumiku" },
  removeOnComplete: { count: config.jobs.keepCompleted.count, age: Duration.toSeconds(config.jobs.keepCompleted.age) },
  removeOnFail: { count: config.jobs.keepFailed.count, age: Duration.toSeconds(config.jobs.keepFailed.age) }
})

// BullMQ refuses ids with ':' and all-digit ids; ours are also bounded and plain.
const isValidJobId = (jobId: string) => /^[A-Za-z0-9._-]{1,128}$/.test(jobId) && !/^\d+$/.test(jobId)

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
 * The producer side of every registered queue, plus each queue's dead-letter queue. Owns one
 * producer connection and the BullMQ Queue objects: the queues are closed (at most 2 s each, a real
 * bound), then the connection is quit, when the layer is released (after the workers and the HTTP
 * server that use them).
 */
export const makeJobQueuesLive = (definitions: ReadonlyArray<AnyJobDefinition>) =>
  Layer.scoped(
    JobQueues,
    Effect.gen(function*() {
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
      const queues = new Map<string, { readonly main: Queue; readonly dlq: Queue }>()
      for (const definition of definitions) {
        if (queues.has(definition.queue)) return yield* Effect.dieMessage(`job queue "${definition.queue}" is defined twice`)
        queues.set(definition.queue, { main: yield* open(definition.queue), dlq: yield* open(deadLetterQueueName(definition.queue)) })
      }
      const options = jobOptions(config)

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
      const lookup = (queue: string) => {
        const found = queues.get(queue)
        return found === undefined ? Effect.fail(new UnknownQueue({ queue })) : Effect.succeed(found)
      }
      const deadLetterJob = (queue: string, jobId: string) =>
        Effect.flatMap(lookup(queue), ({ dlq }) =>
          call(queue, () => dlq.getJob(jobId)).pipe(
            Effect.flatMap((job) => (job === undefined ? Effect.fail(new DeadLetterNotFound({ queue, jobId })) : Effect.succeed(job)))
          ))

      const countsOf = (name: string, { dlq, main }: { readonly main: Queue; readonly dlq: Queue }) =>
        call(name, async (): Promise<QueueCounts> => {
          const [counts, dead] = await Promise.all([
            main.getJobCounts("waiting", "active", "delayed", "failed", "prioritized"),
            dlq.getJobCounts("waiting")
          ])
          return {
            waiting: (counts["waiting"] ?? 0) + (counts["prioritized"] ?? 0),
            active: counts["active"] ?? 0,
            delayed: counts["delayed"] ?? 0,
            failed: counts["failed"] ?? 0,
            deadLettered: dead["waiting"] ?? 0
          }
        })

      return JobQueues.of({
        queueNames: [...queues.keys()],
        // Untraced: the span and its stack capture cost more than the rest of the call.
        enqueue: Effect.fnUntraced(function*(definition, jobId, payload) {
          if (!isValidJobId(jobId)) return yield* new InvalidJobId({ jobId })
          const { main } = yield* Effect.orDie(lookup(definition.queue))
          const encoded = yield* Schema.encode(definition.payload)(payload).pipe(Effect.orDie)
          yield* call(definition.queue, () => main.add(definition.queue, encoded, { ...options, jobId }))
          return { jobId }
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
            const letter = yield* deadLetterJob(queue, jobId)
            const { main } = yield* lookup(queue)
            yield* call(queue, async () => {
              // The failed original still holds the id; it goes, then the job comes back fresh.
              const original = await main.getJob(jobId)
              if (original !== undefined) await original.remove()
              await main.add(queue, (letter.data as DeadLetter).payload, { ...options, jobId })
              await letter.remove()
            })
            yield* Effect.logInfo("dead letter re-enqueued", { queue, jobId })
          }),
          discard: Effect.fn("JobQueues.deadLetters.discard")(function*(queue, jobId) {
            const letter = yield* deadLetterJob(queue, jobId)
            yield* call(queue, () => letter.remove())
            yield* Effect.logInfo("dead letter discarded", { queue, jobId })
          }),
          record: Effect.fn("JobQueues.deadLetters.record")(function*(letter) {
            const { dlq } = yield* lookup(letter.queue)
            yield* call(letter.queue, () => dlq.add(letter.queue, letter, { jobId: letter.jobId, removeOnComplete: true }))
          })
        }
      })
    })
  )
