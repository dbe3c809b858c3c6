import { Data, type Duration } from "effect"

/** How a job failure is treated: each class has its own retry schedule (see retryPolicy.ts). */
export type JobClass = "transient" | "rate_limited" | "timeout" | "permanent"

/** A dependency failed in a way that may pass: a reset connection, an upstream 5xx, a dependency timeout. */
export class JobTransient extends Data.TaggedError("JobTransient")<{
  readonly reason: string
  /** The upstream's own estimate of when to try again (a model still loading): the retry waits at least this. */
  readonly retryAfter?: Duration.Duration | undefined
  readonly cause?: unknown
}> {
  override get message() {
    return `transient: ${this.reason}`
  }
}

/** An upstream asked us to slow down; retried after `retryAfter` without consuming an attempt. */
export class JobRateLimited extends Data.TaggedError("JobRateLimited")<{
  readonly reason: string
  readonly retryAfter: Duration.Duration
  readonly cause?: unknown
}> {
  override get message() {
    return `rate limited: ${this.reason}`
  }
}

/** The job ran past its own time budget (its work, FFmpeg included, was interrupted). */
export class JobTimeout extends Data.TaggedError("JobTimeout")<{
  readonly budget: Duration.Duration
}> {
  override get message() {
    return `timeout: the job exceeded its budget`
  }
}

/** Retrying cannot help: bad input, unsupported media, an upstream 4xx, a payload that does not decode. */
export class JobPermanent extends Data.TaggedError("JobPermanent")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `permanent: ${this.reason}`
  }
}

export type JobError = JobTransient | JobRateLimited | JobTimeout | JobPermanent

export const jobClassOf = (error: JobError): JobClass => {
  switch (error._tag) {
    case "JobTransient":
      return "transient"
    case "JobRateLimited":
      return "rate_limited"
    case "JobTimeout":
      return "timeout"
    case "JobPermanent":
      return "permanent"
  }
}

export const isJobError = (u: unknown): u is JobError =>
  typeof u === "object" && u !== null && "_tag" in u &&
  (u._tag === "JobTransient" || u._tag === "JobRateLimited" || u._tag === "JobTimeout" || u._tag === "JobPermanent")
