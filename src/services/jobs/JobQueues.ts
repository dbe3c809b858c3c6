import { Context, Data, type Effect, Schema } from "effect"
import type { JobDefinition } from "./JobDefinition.js"

/** Redis (hence the queue) is unreachable; nothing was enqueued. HTTP maps it to 503. */
export class JobQueueUnavailable extends Data.TaggedError("JobQueueUnavailable")<{
  readonly queue: string
  readonly cause: unknown
}> {
  override get message() {
    return `the job queue "${this.queue}" is unavailable`
  }
}

export class InvalidJobId extends Data.TaggedError("InvalidJobId")<{ readonly jobId: string }> {
  override get message() {
    return "a job id must be 1-128 characters of letters, digits, '-', '_' or '.', and not only digits"
  }
}

/** The job id is taken by a job with another payload: enqueuing it would silently drop this caller's work. HTTP maps it to 409. */
export class JobConflict extends Data.TaggedError("JobConflict")<{ readonly queue: string; readonly jobId: string }> {
  override get message() {
    return `job "${this.jobId}" already exists in queue "${this.queue}" with another payload`
  }
}

/**
 * The dead letter cannot be retried or discarded right now: another admin call is handling it, its
 * compensation has not finished, or its job is locked by a worker; or its job kind refuses the retry
 * (`JobDefinition.refuseRetry`, the reason says why). HTTP maps it to 409.
 */
export class DeadLetterBusy extends Data.TaggedError("DeadLetterBusy")<{
  readonly queue: string
  readonly jobId: string
  readonly reason: string
}> {
  override get message() {
    return `dead letter "${this.jobId}" in queue "${this.queue}" is busy: ${this.reason}`
  }
}

export class UnknownQueue extends Data.TaggedError("UnknownQueue")<{ readonly queue: string }> {
  override get message() {
    return `there is no job queue named "${this.queue}"`
  }
}

export class DeadLetterNotFound extends Data.TaggedError("DeadLetterNotFound")<{
  readonly queue: string
  readonly jobId: string
}> {
  override get message() {
    return `no dead letter "${this.jobId}" in queue "${this.queue}"`
  }
}

/** A job that failed for good, as kept in its queue's dead-letter queue (same job id). */
export const DeadLetter = Schema.Struct({
  queue: Schema.String,
  jobId: Schema.String,
  /** The encoded payload, as it was enqueued. */
  payload: Schema.Unknown,
  jobClass: Schema.Literal("transient", "rate_limited", "timeout", "permanent"),
  reason: Schema.String,
  lastError: Schema.Struct({ tag: Schema.String, message: Schema.String }),
  attemptsMade: Schema.Number,
  attemptsStarted: Schema.Number,
  enqueuedAt: Schema.String,
  lastAttemptAt: Schema.NullOr(Schema.String),
  deadLetteredAt: Schema.String
}).annotations({ identifier: "DeadLetter" })
export type DeadLetter = typeof DeadLetter.Type

export const QueueCounts = Schema.Struct({
  waiting: Schema.Number,
  active: Schema.Number,
  delayed: Schema.Number,
  failed: Schema.Number,
  deadLettered: Schema.Number,
  /** Compensations waiting, running or delayed for a retry. */
  compensationPending: Schema.Number,
  /** Compensations that failed for good: each needs an operator. */
  compensationFailed: Schema.Number
}).annotations({ identifier: "QueueCounts" })
export type QueueCounts = typeof QueueCounts.Type

export interface JobQueuesShape {
  readonly queueNames: ReadonlyArray<string>
  /**
   * Adds a job under the caller's id. Idempotent: the same id while the job is retained adds
   * nothing. Fails fast with JobQueueUnavailable when Redis is down. `fresh`: the caller drew the id
   * just now (a random UUID), so no earlier job can hold it, and the read that tells a conflicting
   * earlier job apart (JobConflict) is skipped.
   */
  readonly enqueue: <P, I>(
    definition: JobDefinition<P, I>,
    jobId: string,
    payload: P,
    options?: { readonly fresh?: boolean }
  ) => Effect.Effect<{ readonly jobId: string }, JobQueueUnavailable | InvalidJobId | JobConflict>
  /** Removes a job that is waiting or delayed; a job a worker holds, or none, stays as it is (false). */
  readonly remove: (queue: string, jobId: string) => Effect.Effect<boolean, JobQueueUnavailable | UnknownQueue>
  readonly counts: Effect.Effect<Record<string, QueueCounts>, JobQueueUnavailable>
  readonly deadLetters: {
    readonly list: (
      queue: string,
      page: { readonly offset: number; readonly limit: number }
    ) => Effect.Effect<{ readonly items: ReadonlyArray<DeadLetter>; readonly total: number }, JobQueueUnavailable | UnknownQueue>
    readonly get: (queue: string, jobId: string) => Effect.Effect<DeadLetter, JobQueueUnavailable | UnknownQueue | DeadLetterNotFound>
    /**
     * Re-enqueues the job with a fresh budget (its per-class failure counts and its finished
     * compensation task cleared) and removes the dead letter. One admin call per dead letter at a time.
     */
    readonly retry: (queue: string, jobId: string) => Effect.Effect<void, JobQueueUnavailable | UnknownQueue | DeadLetterNotFound | DeadLetterBusy>
    /** Removes the dead letter and its finished compensation task (never a pending compensation). */
    readonly discard: (queue: string, jobId: string) => Effect.Effect<void, JobQueueUnavailable | UnknownQueue | DeadLetterNotFound | DeadLetterBusy>
    /**
     * Records a dead letter (replacing one an earlier job under the same id left) and, with
     * `compensate`, its compensation task in `<queue>-compensate`; both idempotent for one job and
     * enqueue, the letter first. Used by the worker runtime.
     */
    readonly record: (letter: DeadLetter, options: { readonly compensate: boolean }) => Effect.Effect<void, JobQueueUnavailable | UnknownQueue>
  }
}

export class JobQueues extends Context.Tag("app/JobQueues")<JobQueues, JobQueuesShape>() {}
