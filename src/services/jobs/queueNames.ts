import type { AppConfigShape } from "../platform/AppConfig.js"
import type { DeadLetter } from "./JobQueues.js"

/**
 * The names the job system derives in Redis and BullMQ: one module, so producers, workers and the
 * admin API agree on every rule.
 */

/** BullMQ's key prefix for this deployment: under the Redis key prefix, so test runs stay apart. */
export const bullPrefix = (config: AppConfigShape) => `${config.redis.keyPrefix}bull`

/** The Redis pub/sub channel of one user's job and generation events (progress, settlement). */
export const progressChannel = (keyPrefix: string, userId: string) => `${keyPrefix}progress:${userId}`

export const deadLetterQueueName = (queue: string) => `${queue}-dlq`

/** Where a job that failed for good waits for its compensation. */
export const compensationQueueName = (queue: string) => `${queue}-compensate`

/**
 * One compensation task per job *and enqueue*: a job delivered again after its failure finds its
 * own task (nothing runs twice), while a later job reusing the id has its own and is compensated.
 */
export const compensationTaskId = (letter: Pick<DeadLetter, "jobId" | "enqueuedAt">) => `${letter.jobId}.${Date.parse(letter.enqueuedAt)}`

/** Failures per error class of one job (a hash under the Redis key prefix), so each class has its own budget. */
export const classFailuresKey = (queue: string, jobId: string) => `jobs:failures:${queue}:${jobId}`

/** Suffixes of the queues the job system derives from each queue (dead letters, compensation tasks). */
export const RESERVED_QUEUE_SUFFIXES: ReadonlyArray<string> = ["-dlq", "-compensate"]

/** The reserved suffix a queue name ends in, if any. */
export const reservedQueueSuffix = (queue: string): string | undefined =>
  RESERVED_QUEUE_SUFFIXES.find((suffix) => queue.toLowerCase().endsWith(suffix))

/** A queue name: 1-64 letters, digits, '-' or '_' (the derived queues append their suffix). */
export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,64}$/

/** Why `queue` cannot name a job kind's queue, if it cannot. */
export const queueNameProblem = (queue: string): string | undefined => {
  if (!QUEUE_NAME.test(queue)) return `job queue name "${queue}" must be 1-64 letters, digits, '-' or '_'`
  const reserved = reservedQueueSuffix(queue)
  return reserved === undefined
    ? undefined
    : `job queue name "${queue}" must not end in "${reserved}": the job system derives such queues from each queue`
}

/** A job id: BullMQ refuses ids with ':' and all-digit ids; ours are also bounded and plain. */
export const JOB_ID = /^(?!\d+$)[A-Za-z0-9._-]{1,128}$/

export const isValidJobId = (jobId: string) => JOB_ID.test(jobId)
