import { Duration, ParseResult } from "effect"
import { isJobError, type JobError, JobPermanent, JobRateLimited, JobTimeout, JobTransient } from "./JobError.js"
import { errorCodeOf, isSqlState } from "../platform/errorCode.js"

/**
 * The one place where failures become job classes. It reads error codes, HTTP statuses, Postgres
 * SQLSTATEs, process exit codes and error tags; never the text of a message.
 */

/** Node/libuv socket and DNS codes of a dependency that may come back. */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT"
])

/** Upstream HTTP statuses worth retrying (AWS SDK's transient list plus 408). */
export const TRANSIENT_HTTP_STATUSES: ReadonlySet<number> = new Set([408, 500, 502, 503, 504])

/** Postgres SQLSTATEs: serialization failure, deadlock, and connection exceptions (class 08). */
const transientSqlState = (code: string) => code === "40001" || code === "40P01" || code.startsWith("08") || code === "57P01"

const DEFAULT_RETRY_AFTER = Duration.seconds(30)

const field = (u: unknown, name: string): unknown =>
  typeof u === "object" && u !== null && name in u ? (u as Record<string, unknown>)[name] : undefined

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3). */
export const parseRetryAfter = (value: unknown, now = Date.now()): Duration.Duration | undefined => {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return Duration.seconds(value)
  if (typeof value !== "string" || value.trim() === "") return undefined
  if (/^\d+$/.test(value.trim())) return Duration.seconds(Number(value.trim()))
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Duration.millis(Math.max(0, at - now))
}

const httpStatusOf = (u: unknown): number | undefined => {
  for (const candidate of [field(u, "status"), field(u, "statusCode"), field(field(u, "response"), "status")]) {
    if (typeof candidate === "number" && candidate >= 100 && candidate <= 599) return candidate
  }
  return undefined
}

const retryAfterOf = (u: unknown): unknown => {
  const direct = field(u, "retryAfter")
  if (direct !== undefined) return direct
  const headers = field(u, "headers") ?? field(field(u, "response"), "headers")
  if (headers instanceof Headers) return headers.get("retry-after") ?? undefined
  return field(headers, "retry-after")
}

const classifyOne = (u: unknown): JobError | undefined => {
  if (isJobError(u)) return u
  if (ParseResult.isParseError(u)) return new JobPermanent({ reason: "the payload did not decode", cause: u })

  const tag = field(u, "_tag")
  if (tag === "FfmpegTimeout") return new JobTimeout({ budget: (field(u, "timeout") as Duration.Duration | undefined) ?? Duration.zero })
  if (tag === "FfmpegError") {
    const reason = field(u, "reason")
    // A signal (OOM killer, our own kill on shutdown) says nothing about the input; an exit code does.
    if (field(u, "signal") !== undefined) return new JobTransient({ reason: "ffmpeg was killed by a signal", cause: u })
    if (reason === "spawn" || reason === "not-found" || reason === "io") {
      return new JobTransient({ reason: `ffmpeg could not run (${String(reason)})`, cause: u })
    }
    return new JobPermanent({ reason: `ffmpeg rejected the input (exit code ${String(field(u, "exitCode"))})`, cause: u })
  }
  // this process's ffmpeg lacks a filter or encoder (or there is none): no retry here can grow one
  if (tag === "FfmpegUnsupported") {
    const missing = field(u, "missing")
    const names = Array.isArray(missing) ? missing.map(String).join(", ") : "a capability"
    return new JobPermanent({ reason: `ffmpeg lacks ${names}, which the job needs`, cause: u })
  }
  // the job's idempotency key already names another ledger operation: a retry would meet the same row
  if (tag === "IdempotencyKeyReused") return new JobPermanent({ reason: "the idempotency key names another operation", cause: u })
  if (tag === "RedisError" || tag === "StorageError" || tag === "DatabaseError") {
    return new JobTransient({ reason: `${String(tag)}`, cause: u })
  }
  if (tag === "TimeoutException") return new JobTransient({ reason: "a dependency timed out", cause: u })

  const status = httpStatusOf(u)
  if (status !== undefined) {
    if (status === 429) {
      return new JobRateLimited({
        reason: "upstream answered 429",
        retryAfter: parseRetryAfter(retryAfterOf(u)) ?? DEFAULT_RETRY_AFTER,
        cause: u
      })
    }
    if (TRANSIENT_HTTP_STATUSES.has(status)) return new JobTransient({ reason: `upstream answered ${status}`, cause: u })
    if (status >= 400 && status < 500) return new JobPermanent({ reason: `upstream answered ${status}`, cause: u })
  }

  const code = errorCodeOf(u)
  if (code !== undefined) {
    if (TRANSIENT_NETWORK_CODES.has(code)) return new JobTransient({ reason: `network error ${code}`, cause: u })
    if (isSqlState(code)) {
      if (transientSqlState(code)) return new JobTransient({ reason: `database error ${code}`, cause: u })
      if (code === "57014") return new JobTransient({ reason: "a database statement timed out", cause: u })
      if (code.startsWith("22") || code.startsWith("23")) return new JobPermanent({ reason: `database rejected the data (${code})`, cause: u })
    }
  }
  return undefined
}

/**
 * Classifies any failure. The cause chain (`cause` fields, SqlError wrappers) is searched for the
 * first recognisable error; an unrecognised failure is transient, so it is retried a bounded
 * number of times rather than dropped.
 */
export const classify = (u: unknown): JobError => {
  let current: unknown = u
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const found = classifyOne(current)
    if (found !== undefined) return found
    current = field(current, "cause")
  }
  return new JobTransient({ reason: "unrecognised failure", cause: u })
}
