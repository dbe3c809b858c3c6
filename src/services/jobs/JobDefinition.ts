import type { Duration, Effect, Schema } from "effect"
import type { SqlClient } from "@effect/sql"
import type { AppCatalog } from "../generations/AppCatalog.js"
import type { Generations } from "../generations/Generations.js"
import type { Ledger } from "../credits/Ledger.js"
import type { AppConfig, AppConfigShape } from "../platform/AppConfig.js"
import type { Ffmpeg } from "../platform/Ffmpeg.js"
import type { Redis } from "../platform/Redis.js"
import type { Storage } from "../platform/Storage.js"
import type { Payments } from "../payments/Payments.js"
import type { ImageGenerator } from "../images/ImageGenerator.js"
import type { JobQueues } from "./JobQueues.js"
import { queueNameProblem } from "./queueNames.js"

/** What the app layer provides to job handlers and to routes added beside the API (tests' extra routes). */
export type AppServices =
  | AppConfig
  | Redis
  | JobQueues
  | SqlClient.SqlClient
  | Storage
  | Ffmpeg
  | Ledger
  | AppCatalog
  | Generations
  | Payments
  | ImageGenerator

/**
 * A kind of job: its queue, the Schema of its payload (encoded on enqueue, decoded in the worker),
 * its own time budget and its default worker concurrency. Producers and workers share the value.
 */
export interface JobDefinition<P = unknown, I = unknown> {
  /** The BullMQ queue name; letters, digits, '-' and '_' only, not ending in -dlq or -compensate. */
  readonly queue: string
  readonly payload: Schema.Schema<P, I>
  readonly timeout: Duration.DurationInput
  readonly concurrency: number
  /** Whose progress channel the job reports on, if any. */
  readonly userIdOf?: (payload: P) => string | undefined
  /**
   * Asked before the dead-letter admin re-enqueues a job of this kind: a reason refuses the retry
   * (409), undefined allows it. For state the job's compensation settled (a refund, say).
   */
  readonly refuseRetry?: (jobId: string) => Effect.Effect<string | undefined, unknown, SqlClient.SqlClient>
  /**
   * A periodic job: the job queues keep one BullMQ job scheduler for it (id = the queue name), which
   * adds a job with `payload` every `every` (across every process, one scheduler in Redis).
   */
  readonly repeat?: {
    readonly every: (config: AppConfigShape) => Duration.Duration
    readonly payload: P
  }
}

// `any`: a registry holds definitions of every payload type; each use site is typed by its own definition.
export type AnyJobDefinition = JobDefinition<any, any>

export const defineJob = <P, I>(definition: JobDefinition<P, I>): JobDefinition<P, I> => {
  const problem = queueNameProblem(definition.queue)
  if (problem !== undefined) throw new Error(problem)
  return definition
}
