import { monitorEventLoopDelay } from "node:perf_hooks"
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Duration, Effect, Layer, Metric, Option } from "effect"
import { queueDepth } from "../../services/jobs/metrics.js"
import { JobQueues } from "../../services/jobs/JobQueues.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { eventLoopDelay, processMemory } from "../../services/platform/metrics.js"
import { MetricsExporter } from "../../services/platform/MetricsExporter.js"

/** Queue depths are read from Redis at each scrape; a slow Redis leaves the last values. */
const QUEUE_COUNTS_BUDGET = Duration.millis(500)

const QUEUE_STATES = [
  ["waiting", "waiting"],
  ["active", "active"],
  ["delayed", "delayed"],
  ["failed", "failed"],
  ["deadLettered", "dead_lettered"],
  ["compensationPending", "compensation_pending"],
  ["compensationFailed", "compensation_failed"]
] as const

/**
 * The Prometheus exporter over Effect's metric registry: @effect/opentelemetry's producer reads
 * the registry, the OpenTelemetry Prometheus exporter (a pull MetricReader, its own server not
 * started) collects it and its serializer writes the exposition text; the route (http/platform
 * metricsRoute.ts) serves it. Owns the reader and the event-loop delay monitor: both are shut
 * down when the layer is released (after the HTTP drain, so a last scrape still answers).
 */
export const MetricsPrometheusLive = Layer.unwrapScoped(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const queues = yield* Effect.serviceOption(JobQueues)
    const reader = new PrometheusExporter({ preventServerStart: true })
    const serializer = new PrometheusSerializer()
    const loopDelay = monitorEventLoopDelay({ resolution: 20 })
    loopDelay.enable()
    yield* Effect.addFinalizer(() => Effect.sync(() => loopDelay.disable()))

    const refreshProcess = Effect.suspend(() => {
      const memory = process.memoryUsage()
      const seconds = (ns: number) => (Number.isFinite(ns) ? ns : 0) / 1e9
      const updates = [
        Metric.set(Metric.tagged(processMemory, "kind", "rss"), memory.rss),
        Metric.set(Metric.tagged(processMemory, "kind", "heap_used"), memory.heapUsed),
        Metric.set(Metric.tagged(processMemory, "kind", "heap_total"), memory.heapTotal),
        Metric.set(Metric.tagged(processMemory, "kind", "external"), memory.external),
        Metric.set(Metric.tagged(processMemory, "kind", "array_buffers"), memory.arrayBuffers),
        Metric.set(Metric.tagged(eventLoopDelay, "quantile", "p50"), seconds(loopDelay.percentile(50))),
        Metric.set(Metric.tagged(eventLoopDelay, "quantile", "p99"), seconds(loopDelay.percentile(99))),
        Metric.set(Metric.tagged(eventLoopDelay, "quantile", "max"), seconds(loopDelay.max))
      ]
      loopDelay.reset()
      return Effect.all(updates, { discard: true })
    })

    const refreshQueues = Option.match(queues, {
      onNone: () => Effect.void,
      onSome: (queues) =>
        queues.counts.pipe(
          Effect.timeoutOption(QUEUE_COUNTS_BUDGET),
          Effect.flatMap(Option.match({
            onNone: () => Effect.logWarning("metrics: queue depths not read in time; last values kept"),
            onSome: (counts) =>
              Effect.forEach(Object.entries(counts), ([queue, c]) =>
                Effect.forEach(QUEUE_STATES, ([field, state]) =>
                  Metric.set(Metric.tagged(Metric.tagged(queueDepth, "queue", queue), "state", state), c[field]), { discard: true }), {
                discard: true
              })
          })),
          Effect.catchAll((error) => Effect.logWarning("metrics: queue depths unavailable; last values kept", { error: error.message }))
        )
    })

    const scrape = Effect.gen(function*() {
      yield* Effect.all([refreshProcess, refreshQueues], { concurrency: "unbounded", discard: true })
      const collected = yield* Effect.promise(() => reader.collect())
      return { contentType: "text/plain; version=0.0.4; charset=utf-8", body: serializer.serialize(collected.resourceMetrics) }
    })

    return Layer.succeed(MetricsExporter, { scrape }).pipe(
      Layer.provideMerge(OtelMetrics.layer(() => reader)),
      Layer.provide(OtelResource.layer({ serviceName: config.telemetry.serviceName, serviceVersion: config.version }))
    )
  })
)
