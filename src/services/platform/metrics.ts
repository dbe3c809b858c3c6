import { Metric, MetricBoundaries, MetricLabel } from "effect"

/**
 * The process' own metrics (Effect's Metric module: one global registry, which the Prometheus
 * exporter of layers/platform/MetricsLive.ts reads at each scrape). Feature metrics live beside
 * their feature (services/jobs/metrics.ts, services/credits/metrics.ts, services/payments/metrics.ts).
 */

/** Seconds, from 5 ms to 30 s: the API's answers, uploads included. */
const REQUEST_BOUNDARIES = MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])

export const httpRequestDuration = Metric.histogram(
  "http_request_duration_seconds",
  REQUEST_BOUNDARIES,
  "HTTP requests answered, by method, route template and status"
)

/** Read from the Node server's own in-flight set at each scrape (no per-request work). */
export const httpRequestsInFlight = Metric.gauge("http_requests_in_flight", { description: "HTTP requests being answered" })

/** Tagged with `policy` (rateLimitPolicies.ts, or login-lockout). */
export const rateLimitRejections = Metric.counter("rate_limit_rejections", {
  description: "requests refused by a rate limit (429), by policy",
  incremental: true
})

/** Tagged with `quantile` (p50, p99, max), in seconds, over the last scrape interval. */
export const eventLoopDelay = Metric.gauge("nodejs_eventloop_delay_seconds", { description: "event-loop delay since the previous scrape" })

/** Tagged with `kind`: rss, heap_used, heap_total, external, array_buffers. */
export const processMemory = Metric.gauge("process_memory_bytes", { description: "process memory, by kind" })

type RequestHook = (seconds: number) => void

/**
 * One histogram observation per request, its labels bounded: the route is a template (or
 * "unmatched"), never the raw path. A hook per label set is kept, so a request costs one map look-up
 * and the histogram's update, outside any fiber.
 */
const hooks = new Map<string, RequestHook>()

export const recordRequest = (method: string, route: string, status: number, durationMs: number): void => {
  const key = `${method} ${status} ${route}`
  let hook = hooks.get(key)
  if (hook === undefined) {
    const tagged = Metric.taggedWithLabels(httpRequestDuration, [
      MetricLabel.make("method", method),
      MetricLabel.make("route", route),
      MetricLabel.make("status", String(status))
    ])
    hook = (seconds) => tagged.unsafeUpdate(seconds, [])
    hooks.set(key, hook)
  }
  hook(durationMs / 1000)
}

/** Unsafe counterpart of Metric.increment for code outside a fiber. */
export const countRateLimitRejection = (policy: string): void =>
  Metric.tagged(rateLimitRejections, "policy", policy).unsafeUpdate(1, [])
