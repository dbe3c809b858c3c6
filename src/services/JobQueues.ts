import { Context, Data, type Effect, Schema } from "effect"
import type { JobDefinition } from "./jobs/JobDefinition.js"

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
  deadLettered: Schema.Number
}).annotations({ identifier: "QueueCounts" })
export type QueueCounts = typeof QueueCounts.Type

export interface JobQueuesShape {
  readonly queueNames: ReadonlyArray<string>
  /**
   * Adds a job under the caller's id. Idempotent: the same id while the job is retained adds
   * nothing. Fails fast with JobQueueUnavailable when Redis is down.
   */
  readonly enqueue: <P, I>(
    definition: JobDefinition<P, I>,
    jobId: string,
    payload: P
  ) => Effect.Effect<{ readonly jobId: string }, JobQueueUnavailable | InvalidJobId>
  readonly counts: Effect.Effect<Record<string, QueueCounts>, JobQueueUnavailable>
  readonly deadLetters: {
    readonly list: (
      queue: string,
      page: { readonly offset: number; readonly limit: number }
    ) => Effect.Effect<{ readonly items: ReadonlyArray<DeadLetter>; readonly total: number }, JobQueueUnavailable | UnknownQueue>
    readonly get: (queue: string, jobId: string) => Effect.Effect<DeadLetter, JobQueueUnavailable | UnknownQueue | DeadLetterNotFound>
    /** Re-enqueues the job with a fresh attempt budget and removes the dead letter. */
    readonly retry: (queue: string, jobId: string) => Effect.Effect<void, JobQueueUnavailable | UnknownQueue | DeadLetterNotFound>
    readonly discard: (queue: string, jobId: string) => Effect.Effect<void, JobQueueUnavailable | UnknownQueue | DeadLetterNotFound>
    /** Records a dead letter (idempotent: the same job id is recorded once). Used by the worker runtime. */
    readonly record: (letter: DeadLetter) => Effect.Effect<void, JobQueueUnavailable | UnknownQueue>
  }
}

export class JobQueues extends Context.Tag("app/JobQueues")<JobQueues, JobQueuesShape>() {}
