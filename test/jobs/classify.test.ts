import { Duration, Effect, Option, ParseResult, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { FfmpegError, FfmpegTimeout, FfmpegUnsupported } from "../../src/services/platform/Ffmpeg.js"
import { IdempotencyKeyReused } from "../../src/services/credits/LedgerError.js"
import { classify, parseRetryAfter } from "../../src/services/jobs/classify.js"
import { type JobClass, jobClassOf, JobPermanent, JobRateLimited, JobTimeout, JobTransient } from "../../src/services/jobs/JobError.js"
import { bullAttempts, decide, defaultRetryPolicy, nthDelay, retrySchedules } from "../../src/services/jobs/retryPolicy.js"
import { RedisError } from "../../src/services/platform/Redis.js"

const errno = (code: string) => Object.assign(new Error("whatever the text says"), { code })
const http = (status: number, headers: Record<string, string> = {}) => Object.assign(new Error("upstream"), { status, headers })
const sql = (code: string) => ({ _tag: "SqlError", message: "Failed to execute statement", cause: Object.assign(new Error("pg"), { code }) })
const parseError = Effect.runSync(Effect.flip(Schema.decodeUnknown(Schema.Struct({ a: Schema.String }))({ a: 1 })))

// The message of every input says nothing (or lies); only codes, statuses and tags may decide.
const table: Array<[string, unknown, JobClass]> = [
  ["ECONNRESET", errno("ECONNRESET"), "transient"],
  ["ECONNREFUSED", errno("ECONNREFUSED"), "transient"],
  ["ETIMEDOUT", errno("ETIMEDOUT"), "transient"],
  ["EAI_AGAIN", errno("EAI_AGAIN"), "transient"],
  ["EPIPE", errno("EPIPE"), "transient"],
  ["a message that says 'connection timeout' but has no code", new Error("Connection timeout, rate limit, not found"), "transient"],
  ["upstream 500", http(500), "transient"],
  ["upstream 502", http(502), "transient"],
  ["upstream 503", http(503), "transient"],
  ["upstream 504", http(504), "transient"],
  ["upstream 408", http(408), "transient"],
  ["upstream 429 with Retry-After", http(429, { "retry-after": "7" }), "rate_limited"],
  ["upstream 400", http(400), "permanent"],
  ["upstream 401", http(401), "permanent"],
  ["upstream 404", http(404), "permanent"],
  ["upstream 422", http(422), "permanent"],
  ["fetch-style response status", { response: { status: 503 } }, "transient"],
  ["serialization failure 40001", sql("40001"), "transient"],
  ["deadlock 40P01", sql("40P01"), "transient"],
  ["connection failure 08006", sql("08006"), "transient"],
  ["statement timeout 57014", sql("57014"), "transient"],
  ["unique violation 23505", sql("23505"), "permanent"],
  ["invalid text 22P02", sql("22P02"), "permanent"],
  ["schema decode failure", parseError, "permanent"],
  ["ffmpeg exit code 1 (bad input)", new FfmpegError({ reason: "exit", detail: "x", exitCode: 1 }), "permanent"],
  ["ffmpeg killed by a signal", new FfmpegError({ reason: "exit", detail: "x", signal: "SIGKILL" }), "transient"],
  ["ffmpeg could not spawn", new FfmpegError({ reason: "spawn", detail: "x" }), "transient"],
  ["ffmpeg lacking a filter", new FfmpegUnsupported({ missing: ["xfade"], ffmpegVersion: "4.1" }), "permanent"],
  ["no ffmpeg in this process (ROLE=api)", new FfmpegUnsupported({ missing: ["ffmpeg"], ffmpegVersion: undefined }), "permanent"],
  ["ffmpeg lacking a filter, wrapped as a cause", new Error("render failed", { cause: new FfmpegUnsupported({ missing: ["xfade"], ffmpegVersion: "4.1" }) }), "permanent"],
  ["a ledger idempotency key reused for another operation", new IdempotencyKeyReused({ key: "gen-1", mismatch: ["amount"] }), "permanent"],
  ["ffmpeg timeout", new FfmpegTimeout({ operation: "run", timeout: Duration.seconds(1) }), "timeout"],
  ["redis failure", new RedisError({ op: "get", cause: errno("ECONNREFUSED") }), "transient"],
  ["an explicit JobPermanent", new JobPermanent({ reason: "unsupported media" }), "permanent"],
  ["an explicit JobTimeout", new JobTimeout({ budget: Duration.seconds(1) }), "timeout"],
  ["an error wrapping ECONNRESET as its cause", new Error("wrapped", { cause: errno("ECONNRESET") }), "transient"],
  ["something unrecognised", new TypeError("x is undefined"), "transient"]
]

describe("job error classification", () => {
  for (const [name, input, expected] of table) {
    it(`${name} -> ${expected}`, () => {
      expect(jobClassOf(classify(input))).toBe(expected)
    })
  }

  it("reads Retry-After as seconds or as an HTTP date", () => {
    const rateLimited = classify(http(429, { "retry-after": "7" }))
    expect(rateLimited._tag === "JobRateLimited" && Duration.toMillis(rateLimited.retryAfter)).toBe(7000)
    const now = Date.parse("2026-11-25T12:00:00Z")
    expect(Option.fromNullable(parseRetryAfter("Wed, 25 Nov 2026 12:00:30 GMT", now)).pipe(Option.map(Duration.toMillis))).toEqual(Option.some(30_000))
    expect(parseRetryAfter("soon")).toBeUndefined()
  })

  it("keeps ParseError recognisable", () => {
    expect(ParseResult.isParseError(parseError)).toBe(true)
  })
})

describe("retry schedules", () => {
  const schedules = retrySchedules(defaultRetryPolicy)
  const delays = (schedule: Parameters<typeof nthDelay>[0], n: number) =>
    Array.from({ length: n }, (_, i) => Effect.runSync(nthDelay(schedule, i + 1)).pipe(Option.map(Duration.toMillis), Option.getOrUndefined))

  it("transient: exponential from 2 s with jitter, 5 attempts (4 retries)", () => {
    const d = delays(schedules.transient, 5)
    expect(d[4]).toBeUndefined()
    d.slice(0, 4).forEach((ms, i) => {
      const nominal = 2000 * 2 ** i
      expect(ms).toBeGreaterThanOrEqual(nominal * 0.8)
      expect(ms).toBeLessThanOrEqual(nominal * 1.2)
    })
  })

  it("timeout: a small number of retries", () => {
    const d = delays(schedules.timeout, 3)
    expect(d[0]).toBeGreaterThan(0)
    expect(d[1]).toBeGreaterThan(0)
    expect(d[2]).toBeUndefined()
  })

  it("decides per class: permanent ends at once, rate limits postpone (clamped) up to a cap", () => {
    const run = (error: Parameters<typeof decide>[1], classFailures: number) =>
      Effect.runSync(decide(defaultRetryPolicy, error, { classFailures }))
    expect(run(new JobPermanent({ reason: "x" }), 1)._tag).toBe("Final")
    expect(run(new JobTransient({ reason: "x" }), 4)._tag).toBe("Retry")
    expect(run(new JobTransient({ reason: "x" }), 5)._tag).toBe("Final")
    const postponed = run(new JobRateLimited({ reason: "x", retryAfter: Duration.hours(5) }), 5)
    expect(postponed._tag === "Postpone" && Duration.toMillis(postponed.delay)).toBe(10 * 60 * 1000)
    expect(run(new JobRateLimited({ reason: "x", retryAfter: Duration.seconds(1) }), 6)._tag).toBe("Final")
  })

  it("each class has its own budget: a timeout after two transient failures is the first timeout, a transient failure after two timeouts waits the first delay", () => {
    // What the worker passes: the failures of this error's class so far (this one included).
    const timeoutAfterTwoTransients = Effect.runSync(decide(defaultRetryPolicy, new JobTimeout({ budget: Duration.seconds(1) }), { classFailures: 1 }))
    expect(timeoutAfterTwoTransients._tag).toBe("Retry")
    const transientAfterTwoTimeouts = Effect.runSync(decide(defaultRetryPolicy, new JobTransient({ reason: "x" }), { classFailures: 1 }))
    expect(transientAfterTwoTimeouts._tag === "Retry" && Duration.toMillis(transientAfterTwoTimeouts.delay)).toBeLessThanOrEqual(2_400)
  })

  it("the exponential delay is capped", () => {
    const policy = { ...defaultRetryPolicy, transientAttempts: 20, transientMaxDelay: Duration.minutes(5) }
    const longest = Math.max(...Array.from({ length: 19 }, (_, i) => {
      const d = Effect.runSync(decide(policy, new JobTransient({ reason: "x" }), { classFailures: i + 1 }))
      return d._tag === "Retry" ? Duration.toMillis(d.delay) : 0
    }))
    expect(longest).toBe(5 * 60 * 1000)
    expect(Effect.runSync(decide(policy, new JobTransient({ reason: "x" }), { classFailures: 20 }))._tag).toBe("Final")
  })

  it("BullMQ's attempts leave room for every class' budget", () => {
    expect(bullAttempts(defaultRetryPolicy)).toBeGreaterThan(defaultRetryPolicy.transientAttempts + defaultRetryPolicy.timeoutAttempts - 1)
  })
})
