import { Either } from "effect"
import { section } from "./section.js"
import { duration, integer, parsed } from "./variable.js"

/** "video-mixer=2,avatar-generation=4": a worker concurrency per queue. */
const parseConcurrency = (raw: string): Either.Either<Readonly<Record<string, number>>, ReadonlyArray<string>> => {
  const out: Record<string, number> = {}
  for (const entry of raw.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const match = /^([A-Za-z0-9_-]+)=(\d+)$/.exec(entry)
    if (match === null || Number(match[2]) < 1) return Either.left([`expected queue=n pairs such as "video-mixer=2"`])
    out[match[1]!] = Number(match[2])
  }
  return Either.right(out)
}

export const jobsSection = section("Jobs", {
  transientBase: duration({
    name: "JOB_TRANSIENT_BASE_DELAY",
    default: "2 seconds",
    description: "transient failures are retried after an exponential, jittered delay from this"
  }),
  transientAttempts: integer({ name: "JOB_TRANSIENT_ATTEMPTS", min: 1, max: 50, default: 5, description: "runs of a job failing transiently" }),
  transientMaxDelay: duration({
    name: "JOB_TRANSIENT_MAX_DELAY",
    default: "5 minutes",
    description: "cap of the exponential transient delay (compensation retries too)"
  }),
  timeoutRetryDelay: duration({
    name: "JOB_TIMEOUT_RETRY_DELAY",
    default: "10 seconds",
    description: "a job over its own time budget is retried after this (jittered)"
  }),
  timeoutAttempts: integer({ name: "JOB_TIMEOUT_ATTEMPTS", min: 1, max: 20, default: 3, description: "runs of a job that keeps timing out" }),
  rateLimitMaxTimes: integer({
    name: "JOB_RATE_LIMIT_MAX_TIMES",
    min: 0,
    max: 100,
    default: 5,
    description: "postponements before a rate-limited job is dead-lettered"
  }),
  rateLimitMinDelay: duration({
    name: "JOB_RATE_LIMIT_MIN_DELAY",
    default: "1 second",
    description: "an upstream's Retry-After is clamped into [min, max]"
  }),
  rateLimitMaxDelay: duration({ name: "JOB_RATE_LIMIT_MAX_DELAY", default: "10 minutes", description: "see JOB_RATE_LIMIT_MIN_DELAY" }),
  stalledInterval: duration({
    name: "JOB_STALLED_INTERVAL",
    default: "30 seconds",
    description: "how often workers look for jobs whose worker died"
  }),
  lockDuration: duration({ name: "JOB_LOCK_DURATION", default: "30 seconds", description: "a worker's lock on its job, renewed while it runs" }),
  keepCompletedCount: integer({
    name: "JOB_KEEP_COMPLETED_COUNT",
    min: 0,
    max: 1_000_000,
    default: 1000,
    description: "completed jobs kept in Redis (by count and by age)"
  }),
  keepCompletedAge: duration({ name: "JOB_KEEP_COMPLETED_AGE", default: "1 day", description: "see JOB_KEEP_COMPLETED_COUNT" }),
  keepFailedCount: integer({
    name: "JOB_KEEP_FAILED_COUNT",
    min: 0,
    max: 1_000_000,
    default: 10_000,
    description: "failed jobs kept in Redis (by count and by age)"
  }),
  keepFailedAge: duration({ name: "JOB_KEEP_FAILED_AGE", default: "7 days", description: "see JOB_KEEP_FAILED_COUNT" }),
  compensationTimeout: duration({
    name: "JOB_COMPENSATION_TIMEOUT",
    default: "30 seconds",
    description: "a job's compensation (refund) is interrupted past this, and retried"
  }),
  compensationAttempts: integer({
    name: "JOB_COMPENSATION_ATTEMPTS",
    min: 1,
    max: 100,
    default: 10,
    description: "compensation runs before it is left failed in <queue>-compensate"
  }),
  concurrency: parsed({
    name: "JOB_CONCURRENCY",
    default: "",
    accepts: "comma list of queue=n",
    description: "per-queue worker concurrency overrides, such as video-mixer=1,avatar-generation=4",
    parse: parseConcurrency
  })
}, (v) => ({
  transientBase: v.transientBase,
  transientAttempts: v.transientAttempts,
  transientMaxDelay: v.transientMaxDelay,
  timeoutRetryDelay: v.timeoutRetryDelay,
  timeoutAttempts: v.timeoutAttempts,
  rateLimitMaxTimes: v.rateLimitMaxTimes,
  rateLimitMinDelay: v.rateLimitMinDelay,
  rateLimitMaxDelay: v.rateLimitMaxDelay,
  stalledInterval: v.stalledInterval,
  lockDuration: v.lockDuration,
  keepCompleted: { count: v.keepCompletedCount, age: v.keepCompletedAge },
  keepFailed: { count: v.keepFailedCount, age: v.keepFailedAge },
  compensation: { timeout: v.compensationTimeout, attempts: v.compensationAttempts },
  concurrency: v.concurrency
}))
