import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Option } from "effect"
import { AppConfig } from "../../services/platform/AppConfig.js"

/**
 * The OpenTelemetry tracer of Effect's spans: batched to the OTLP/HTTP collector at
 * OTEL_EXPORTER_OTLP_ENDPOINT (`<url>/v1/traces`), or to the given processor (tests: an in-memory
 * exporter). Without either, nothing: no tracer, and AppLive leaves span-making off. Owns the
 * tracer provider: released after everything above it, it flushes the spans still batched (within
 * the SDK's shutdown timeout) and shuts the exporter down.
 */
export const makeTracingLive = (processor?: SpanProcessor) =>
  Layer.unwrapEffect(
    Effect.map(AppConfig, (config) => {
      const spanProcessor = processor ?? Option.match(config.telemetry.otlpEndpoint, {
        onNone: () => undefined,
        onSome: (endpoint) => new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }))
      })
      if (spanProcessor === undefined) return Layer.empty
      return Layer.discard(NodeSdk.layer(() => ({
        spanProcessor,
        resource: { serviceName: config.telemetry.serviceName, serviceVersion: config.version },
        shutdownTimeout: "2 seconds"
      })))
    })
  )
