import type { Duration, Schema } from "effect"

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
}

// `any`: a registry holds definitions of every payload type; each use site is typed by its own definition.
export type AnyJobDefinition = JobDefinition<any, any>

/** Suffixes of the queues the job system derives from each queue (dead letters, compensation tasks). */
export const RESERVED_QUEUE_SUFFIXES: ReadonlyArray<string> = ["-dlq", "-compensate"]

/** The reserved suffix a queue name ends in, if any. */
export const reservedQueueSuffix = (queue: string): string | undefined =>
  RESERVED_QUEUE_SUFFIXES.find((suffix) => queue.toLowerCase().endsWith(suffix))

export const defineJob = <P, I>(definition: JobDefinition<P, I>): JobDefinition<P, I> => {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(definition.queue)) {
    throw new Error(`job queue name "${definition.queue}" must be 1-64 letters, digits, '-' or '_'`)
  }
  const reserved = reservedQueueSuffix(definition.queue)
  if (reserved !== undefined) {
    throw new Error(`job queue name "${definition.queue}" must not end in "${reserved}": the job system derives such queues from each queue`)
  }
  return definition
}
