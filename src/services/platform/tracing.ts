import { Effect, Option, Tracer } from "effect"

/**
 * Spans are made only while an exporter is configured (OTEL_EXPORTER_OTLP_ENDPOINT; see
 * layers/platform/TracingLive.ts): otherwise `FiberRef.currentTracerEnabled` is false for every
 * fiber of the app (AppLive) and the HTTP server span is not made (HttpLive), so `Effect.fn`
 * operations, `sql.execute` and the request cost nothing for tracing.
 */

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The W3C traceparent of a span: how a trace is carried to where it continues (a job's data). */
export const traceparentOf = (span: Tracer.AnySpan): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The span a W3C traceparent names, as the parent of work that continues its trace; None when malformed. */
export const parentFromTraceparent = (value: unknown): Option.Option<Tracer.ExternalSpan> => {
  if (typeof value !== "string") return Option.none()
  const match = TRACEPARENT.exec(value)
  if (match === null) return Option.none()
  return Option.some(Tracer.externalSpan({ traceId: match[1]!, spanId: match[2]!, sampled: (Number.parseInt(match[3]!, 16) & 1) === 1 }))
}

/** The traceparent of the current span when it is recorded (sampled); none while tracing is off. */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.map(
  Effect.option(Effect.currentParentSpan),
  (span) => Option.isSome(span) && span.value.sampled ? traceparentOf(span.value) : undefined
)
