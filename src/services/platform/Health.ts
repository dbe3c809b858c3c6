import { access, constants } from "node:fs/promises"
import { getHeapStatistics } from "node:v8"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Predicate } from "effect"
import { AppConfig } from "./AppConfig.js"
import { errorCodeOf } from "./errorCode.js"
import { Ffmpeg } from "./Ffmpeg.js"
import { JobQueues } from "../jobs/JobQueues.js"
import { Lifecycle } from "./Lifecycle.js"
import { Redis } from "./Redis.js"
import { Storage } from "./Storage.js"

export interface CheckResult {
  readonly status: "up" | "down"
  readonly latencyMs: number
  /** A short, client-safe reason (a timeout, an error code); never an internal message. */
  readonly error?: string
  readonly [detail: string]: unknown
}

export interface ReadinessReport {
  readonly ready: boolean
  readonly reason?: "shutting_down" | "dependency_down"
  readonly checks: Record<string, CheckResult>
}

export interface DetailedReport {
  readonly healthy: boolean
  /** Everything, for an administrator: versions, environment, memory, ffmpeg and queue details. */
  readonly body: Record<string, unknown>
  /** What anyone may see: the status, each check's status, latency and client-safe error, and the time. */
  readonly publicBody: Record<string, unknown>
}

/** A check without its details (versions, paths, queue counts): only status, latency and a client-safe error. */
const publicCheck = (check: CheckResult): CheckResult => ({
  status: check.status,
  latencyMs: check.latencyMs,
  ...(check.error === undefined ? {} : { error: check.error })
})

/** Only a code shaped like an errno or SQLSTATE is shown to clients; anything else may carry details. */
const CLIENT_SAFE_CODE = /^[A-Z0-9_]{2,40}$/

const reasonOf = (error: unknown): string => {
  if (Predicate.isTagged(error, "TimeoutException")) return "timeout"
  return errorCodeOf(error, (code) => CLIENT_SAFE_CODE.test(code)) ?? "unavailable"
}

/** Runs one check under a timeout; failures become `down` with a client-safe reason. */
const timed = <A extends Record<string, unknown>, E, R>(
  check: Effect.Effect<A, E, R>,
  timeout: Duration.Duration
): Effect.Effect<CheckResult, never, R> =>
  Effect.suspend(() => {
    const start = performance.now()
    const latency = () => Math.round((performance.now() - start) * 100) / 100
    return check.pipe(
      // A timed-out check is abandoned at once; its cleanup (a Postgres cancel, say) may itself
      // hang, and must not hold the probe's answer.
      Effect.disconnect,
      Effect.timeout(timeout),
      Effect.match({
        onFailure: (error): CheckResult => ({ status: "down", latencyMs: latency(), error: reasonOf(error) }),
        onSuccess: (details): CheckResult => ({ status: "up", latencyMs: latency(), ...details })
      })
    )
  })

/**
 * Dependency checks for the probes. Readiness covers what this process cannot serve without
 * (Postgres, Redis) and is cached briefly; the detailed report adds storage, ffmpeg and memory.
 */
const DRAINING: ReadinessReport = { ready: false, reason: "shutting_down", checks: {} }

export class Health extends Effect.Service<Health>()("app/Health", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const lifecycle = yield* Lifecycle
    const sql = yield* SqlClient.SqlClient
    const redis = yield* Redis
    const storage = yield* Storage
    const ffmpeg = yield* Ffmpeg
    const jobQueues = yield* Effect.serviceOption(JobQueues)
    const startedAt = Date.now()

    const database = sql`SELECT 1`.pipe(Effect.as({}))
    const { info } = ffmpeg
    /**
     * The binaries are still there and executable. ffprobe is needed by every role; ffmpeg is absent only with
     * ROLE=api, which does not need it: that is reported, not counted as down. Missing capabilities are listed
     * without making the report unhealthy (the service runs; only jobs needing them are refused), so an old
     * build shows in the report and the startup warning without paging anyone.
     */
    const ffmpegCheck = Effect.tryPromise(async () => {
      await access(info.ffprobePath, constants.X_OK)
      if (info.ffmpegPath !== undefined) await access(info.ffmpegPath, constants.X_OK)
    }).pipe(Effect.as({
      ...(info.ffmpegPath === undefined
        ? { available: false, note: `ffmpeg is not available for ROLE=${config.role} (only ffprobe is needed); rendering is refused` }
        : { available: true, version: info.ffmpegVersion, source: info.ffmpegSource, path: info.ffmpegPath, missing: info.missing }),
      ffprobe: { version: info.ffprobeVersion, source: info.ffprobeSource, path: info.ffprobePath }
    }))
    const redisPing = redis.ping.pipe(Effect.as({}))

    const dependencies = (timeout: Duration.Duration) =>
      Effect.all({ database: timed(database, timeout), redis: timed(redisPing, timeout) }, { concurrency: "unbounded" })
    type ReadinessChecks = Effect.Effect.Success<ReturnType<typeof dependencies>>

    /** The last checks and when they finished, for `readinessNow`. */
    let last: { readonly checks: ReadinessChecks; readonly at: number; readonly report: ReadinessReport } | undefined
    const ttlMs = Duration.toMillis(config.health.readinessCacheTtl)
    const reportOf = (checks: ReadinessChecks): ReadinessReport =>
      checks.database.status === "up" && checks.redis.status === "up"
        ? { ready: true, checks }
        : { ready: false, reason: "dependency_down", checks }
    const readinessChecks = yield* Effect.cachedWithTTL(
      Effect.tap(dependencies(config.health.checkTimeout), (checks) =>
        Effect.sync(() => {
          last = { checks, at: performance.now(), report: reportOf(checks) }
        })),
      config.health.readinessCacheTtl
    )

    const memory = () => {
      const usage = process.memoryUsage()
      const heapLimit = getHeapStatistics().heap_size_limit
      const limit = config.health.memoryLimitBytes
      const rssPercent = Math.round((usage.rss / limit) * 1000) / 10
      const heapPercent = Math.round((usage.heapUsed / heapLimit) * 1000) / 10
      return {
        status: rssPercent >= 90 || heapPercent >= 90 ? "warning" : "ok",
        rssBytes: usage.rss,
        limitBytes: limit,
        rssPercent,
        heapUsedBytes: usage.heapUsed,
        heapLimitBytes: heapLimit,
        heapPercent
      }
    }

    // Untraced: the probe is hit constantly, and its span cost more than the cached check itself.
    const readiness = Effect.fnUntraced(function*() {
      if (lifecycle.phase() === "draining") return DRAINING
      return reportOf(yield* readinessChecks)
    })

    /**
     * The readiness report without running anything, while the cached checks are fresh (the same
     * report `readiness` gives then); undefined when they must be run again. The probe path asks
     * this first: a fiber per probe was most of its cost.
     */
    const readinessNow = (): ReadinessReport | undefined => {
      if (lifecycle.phase() === "draining") return DRAINING
      return last !== undefined && performance.now() - last.at < ttlMs ? last.report : undefined
    }

    const detailed = Effect.fn("Health.detailed")(function*() {
      const start = performance.now()
      const timeout = config.health.detailedTimeout
      const checks = yield* Effect.all(
        {
          database: timed(database, timeout),
          redis: timed(redisPing, timeout),
          storage: timed(storage.healthCheck.pipe(Effect.as({})), timeout),
          ffmpeg: timed(ffmpegCheck, timeout),
          ...(jobQueues._tag === "Some" && jobQueues.value.queueNames.length > 0
            // The queues live in Redis: when it does not answer they are down at once, not after their
            // own timeout (BullMQ's connections wait for it).
            ? { queues: timed(Effect.zipRight(redisPing, jobQueues.value.counts).pipe(Effect.map((counts) => ({ counts }))), timeout) }
            : {})
        },
        { concurrency: "unbounded" }
      )
      const healthy = Object.values(checks).every((c) => c.status === "up")
      const status = healthy ? "healthy" : "unhealthy"
      const timestamp = new Date().toISOString()
      return {
        healthy,
        publicBody: {
          status,
          timestamp,
          checks: Object.fromEntries(Object.entries(checks).map(([name, check]) => [name, publicCheck(check)]))
        },
        body: {
          status,
          phase: lifecycle.phase(),
          version: config.version,
          environment: config.env,
          timestamp,
          uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
          responseTimeMs: Math.round((performance.now() - start) * 100) / 100,
          checks,
          memory: memory()
        }
      } satisfies DetailedReport
    })

    return { readiness, readinessNow, detailed }
  })
}) {}
