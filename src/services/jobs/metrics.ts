import { Metric, MetricBoundaries, MetricLabel } from "effect"

/** Seconds, from 10 ms to 30 min: no-op jobs to long renders. */
const JOB_BOUNDARIES = MetricBoundaries.fromIterable([0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800])

/**
 * One observation per run of a handler, tagged `queue`, `outcome` (completed, failed) and
 * `error_class` (none, transient, rate_limited, timeout, permanent). Its count is the runs by outcome.
 */
export const jobDuration = Metric.histogram("job_duration_seconds", JOB_BOUNDARIES, "job handler runs, by queue, outcome and error class")

/** Jobs that failed for good and were dead-lettered, tagged `queue` and `error_class`. */
export const jobsDeadLettered = Metric.counter("jobs_dead_lettered", { description: "jobs dead-lettered, by queue and error class", incremental: true })

/** Read from the queues at each scrape, tagged `queue` and `state` (waiting, active, delayed, failed, dead_lettered, compensation_pending, compensation_failed). */
export const queueDepth = Metric.gauge("job_queue_depth", { description: "jobs in each queue, by state (read at scrape time)" })

/** Records one run of a job handler; outside a fiber, as the runtime's job loop is. */
export const recordJobRun = (queue: string, outcome: "completed" | "failed", errorClass: string, durationMs: number): void =>
  Metric.taggedWithLabels(jobDuration, [
    MetricLabel.make("queue", queue),
    MetricLabel.make("outcome", outcome),
    MetricLabel.make("error_class", errorClass)
  ]).unsafeUpdate(durationMs / 1000, [])
