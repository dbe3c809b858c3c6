import { Chunk, Duration, Effect, Option, Schedule } from "effect"
import { type JobError, jobClassOf } from "./JobError.js"

export interface RetryPolicyConfig {
  readonly transientBase: Duration.Duration
  readonly transientAttempts: number
  /** The exponential transient delay never exceeds this. */
  readonly transientMaxDelay: Duration.Duration
  readonly timeoutRetryDelay: Duration.Duration
  readonly timeoutAttempts: number
  readonly rateLimitMaxTimes: number
  readonly rateLimitMinDelay: Duration.Duration
  readonly rateLimitMaxDelay: Duration.Duration
}

export const defaultRetryPolicy: RetryPolicyConfig = {
  transientBase: Duration.seconds(2),
  transientAttempts: 5,
  transientMaxDelay: Duration.minutes(5),
  timeoutRetryDelay: Duration.seconds(10),
  timeoutAttempts: 3,
  rateLimitMaxTimes: 5,
  rateLimitMinDelay: Duration.seconds(1),
  rateLimitMaxDelay: Duration.minutes(10)
}

/**
 * The retry schedule of each class, as Effect Schedules. A schedule's recurrences are the retries:
 * it decides both how long to wait before each one and when there are none left.
 */
/** Exponential from `transientBase`, jittered, each delay capped at `transientMaxDelay`. */
export const cappedExponential = (config: RetryPolicyConfig) =>
  Schedule.exponential(config.transientBase).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((delay) => Duration.min(delay, config.transientMaxDelay))
  )

export const retrySchedules = (config: RetryPolicyConfig) => ({
  transient: cappedExponential(config).pipe(Schedule.intersect(Schedule.recurs(config.transientAttempts - 1))),
  timeout: Schedule.spaced(config.timeoutRetryDelay).pipe(
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(config.timeoutAttempts - 1))
  ),
  permanent: Schedule.stop,
  /** Counts postponements only: the wait itself is the upstream's Retry-After, clamped. */
  rateLimited: Schedule.recurs(config.rateLimitMaxTimes)
})

/** The delay before retry number `n` (1-based), or None when the schedule has no n-th recurrence. */
export const nthDelay = <Out>(schedule: Schedule.Schedule<Out, unknown>, n: number): Effect.Effect<Option.Option<Duration.Duration>> =>
  // `Schedule.run` also emits the output of the step at which the schedule ends, so a schedule
  // that recurs k times yields k + 1 values.
  Schedule.run(Schedule.delays(schedule), 0, Array.from({ length: n + 1 }, () => undefined)).pipe(
    Effect.map((delays) => (Chunk.size(delays) > n ? Chunk.get(delays, n - 1) : Option.none()))
  )

export type RetryDecision =
  | { readonly _tag: "Retry"; readonly delay: Duration.Duration }
  | { readonly _tag: "Postpone"; readonly delay: Duration.Duration }
  | { readonly _tag: "Final"; readonly reason: string }

/**
 * What to do after a failed attempt. Each class has its own budget: `classFailures` counts the
 * failures of this error's class so far, this one included (so a timeout after two transient
 * failures is the first timeout, and gets the whole timeout budget).
 */
export const decide = (
  config: RetryPolicyConfig,
  error: JobError,
  progress: { readonly classFailures: number }
): Effect.Effect<RetryDecision> => {
  const schedules = retrySchedules(config)
  const n = Math.max(1, progress.classFailures)
  const retryOrFinal = (schedule: Schedule.Schedule<unknown, unknown>, exhausted: string) =>
    nthDelay(schedule, n).pipe(
      Effect.map(Option.match({
        onNone: (): RetryDecision => ({ _tag: "Final", reason: exhausted }),
        onSome: (delay): RetryDecision => ({ _tag: "Retry", delay })
      }))
    )
  switch (jobClassOf(error)) {
    case "permanent":
      return Effect.succeed({ _tag: "Final", reason: "permanent failure" })
    case "transient": {
      const floor = error._tag === "JobTransient" ? error.retryAfter : undefined
      return retryOrFinal(schedules.transient, `transient failure, ${config.transientAttempts} attempts exhausted`).pipe(
        // An upstream that says when it will be ready (a model loading) is waited for, within the cap.
        Effect.map((decision): RetryDecision =>
          decision._tag === "Retry" && floor !== undefined
            ? { _tag: "Retry", delay: Duration.min(Duration.max(decision.delay, floor), config.transientMaxDelay) }
            : decision
        )
      )
    }
    case "timeout":
      return retryOrFinal(schedules.timeout, `timed out, ${config.timeoutAttempts} attempts exhausted`)
    case "rate_limited": {
      const retryAfter = error._tag === "JobRateLimited" ? error.retryAfter : config.rateLimitMinDelay
      return nthDelay(schedules.rateLimited, n).pipe(
        Effect.map(Option.match({
          onNone: (): RetryDecision => ({ _tag: "Final", reason: `rate limited ${config.rateLimitMaxTimes} times` }),
          onSome: (): RetryDecision => ({
            _tag: "Postpone",
            delay: Duration.clamp(retryAfter, { minimum: config.rateLimitMinDelay, maximum: config.rateLimitMaxDelay })
          })
        }))
      )
    }
  }
}

/**
 * BullMQ's `attempts`: more than the classes can use together (every transient and timeout retry,
 * plus a few attempts cut short by a shutdown), so the budgets above, not BullMQ, end a job. The
 * runtime still dead-letters a job that reaches it.
 */
export const bullAttempts = (config: RetryPolicyConfig) => config.transientAttempts + config.timeoutAttempts + 3
