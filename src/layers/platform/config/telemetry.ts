import { Either, Option } from "effect"
import { section } from "./section.js"
import { optionalInteger, optionalParsed, secret, text } from "./variable.js"

const parseEndpoint = (raw: string): Either.Either<string, ReadonlyArray<string>> => {
  try {
    const url = new URL(raw.trim())
    return url.protocol === "http:" || url.protocol === "https:"
      ? Either.right(url.toString().replace(/\/$/, ""))
      : Either.left(["expected an http:// or https:// URL"])
  } catch {
    return Either.left(["expected an http:// or https:// URL"])
  }
}

/** Metrics (Prometheus) and traces (OpenTelemetry). */
export const telemetrySection = section("Metrics and traces", {
  metricsPort: optionalInteger({
    name: "METRICS_PORT",
    min: 0,
    max: 65535,
    whenUnset: "none: /metrics is served on PORT",
    description: "serve GET /metrics on this port, on its own listener, instead of PORT (0: any free port)"
  }),
  metricsToken: secret({
    name: "METRICS_TOKEN",
    whenUnset: "none: /metrics answers without credentials (refused in production unless METRICS_PORT is set)",
    description: "bearer token GET /metrics requires; in production required while /metrics is on PORT, at least 32 characters"
  }),
  otlpEndpoint: optionalParsed({
    name: "OTEL_EXPORTER_OTLP_ENDPOINT",
    whenUnset: "none: no spans are made at all",
    accepts: "http(s) URL",
    description: "OTLP/HTTP collector base URL; traces are sent to <url>/v1/traces",
    parse: parseEndpoint
  }),
  serviceName: text({ name: "OTEL_SERVICE_NAME", default: "lumiku-backend", description: "service.name of the exported spans" })
}, (v) => ({
  metricsPort: v.metricsPort,
  metricsToken: v.metricsToken,
  otlpEndpoint: v.otlpEndpoint,
  serviceName: v.serviceName,
  tracing: Option.isSome(v.otlpEndpoint)
}))
