import { Context, type Effect } from "effect"

/** One scrape: the exposition text and its content type. */
export interface MetricsScrape {
  readonly contentType: string
  readonly body: string
}

/**
 * Every metric of the process (Effect's registry: the app's metrics, the features', the payments'
 * counters) in the Prometheus text format. Values read at scrape time (queue depths, memory,
 * event-loop delay) are refreshed first.
 */
export interface MetricsExporterShape {
  readonly scrape: Effect.Effect<MetricsScrape>
}

export class MetricsExporter extends Context.Tag("app/MetricsExporter")<MetricsExporter, MetricsExporterShape>() {}
