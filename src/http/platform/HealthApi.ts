import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { RateLimited, ServiceUnavailable } from "./ApiError.js"

const Check = Schema.Struct({
  status: Schema.Literal("up", "down"),
  latencyMs: Schema.Number,
  error: Schema.optional(Schema.String)
})

export const Liveness = Schema.Struct({ status: Schema.Literal("ok") }).annotations({ identifier: "Liveness" })

export const Readiness = Schema.Struct({
  status: Schema.Literal("ready", "not_ready"),
  reason: Schema.optional(Schema.Literal("shutting_down", "dependency_down")),
  checks: Schema.Record({ key: Schema.String, value: Check })
}).annotations({ identifier: "Readiness" })

export const DetailedHealth = Schema.Struct({
  status: Schema.Literal("healthy", "unhealthy"),
  phase: Schema.String,
  version: Schema.String,
  environment: Schema.String,
  timestamp: Schema.String,
  uptimeSeconds: Schema.Number,
  responseTimeMs: Schema.Number,
  checks: Schema.Record({ key: Schema.String, value: Check }),
  memory: Schema.Struct({
    status: Schema.Literal("ok", "warning"),
    rssBytes: Schema.Number,
    limitBytes: Schema.Number,
    rssPercent: Schema.Number,
    heapUsedBytes: Schema.Number,
    heapLimitBytes: Schema.Number,
    heapPercent: Schema.Number
  })
}).annotations({ identifier: "DetailedHealth" })

/** The detailed report without an administrator's credential. */
export const PublicHealth = Schema.Struct({
  status: Schema.Literal("healthy", "unhealthy"),
  timestamp: Schema.String,
  checks: Schema.Record({ key: Schema.String, value: Check })
}).annotations({ identifier: "PublicHealth" })

const AnyDetailedHealth = Schema.Union(DetailedHealth, PublicHealth)

const detailedEndpoint = <const Name extends string>(name: Name, path: `/${string}`) =>
  HttpApiEndpoint.get(name, path)
    .addSuccess(AnyDetailedHealth)
    .addError(AnyDetailedHealth, { status: 503 })
    .addError(RateLimited)
    .addError(ServiceUnavailable)
    .annotate(OpenApi.Description, "Every dependency's status and latency. With an administrator's `Authorization: Bearer` credential (ADMIN_TOKEN or an admin user's session token) also the version, environment, memory, ffmpeg and queue details; a missing or invalid credential gets the public view, never a 401. Rate limited per client.")

/** Kubernetes probes and the detailed report (the latter at both /health and /api/health). */
export class HealthApi extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("liveness", "/health/liveness")
      .addSuccess(Liveness)
      .annotate(OpenApi.Description, "Process is alive. Checks no dependency and is never rate limited.")
  )
  .add(
    HttpApiEndpoint.get("readiness", "/health/readiness")
      .addSuccess(Readiness)
      .addError(Readiness, { status: 503 })
      .annotate(OpenApi.Description, "Postgres and Redis answer within 500 ms; 503 from the moment shutdown begins.")
  )
  .add(detailedEndpoint("detailed", "/health"))
  .add(detailedEndpoint("detailedApi", "/api/health"))
  .annotate(OpenApi.Title, "Health") {}

