import { PassThrough } from "node:stream"
import { Cause, Data, Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { appConfigFrom } from "../src/layers/AppConfigLive.js"
import { makeLoggerLive } from "../src/layers/LoggerLive.js"
import { makeRedactor } from "../src/layers/redact.js"
import { AppConfig } from "../src/services/AppConfig.js"
import { startApp } from "./support/inProcessApp.js"
import { testEnv } from "./support/env.js"

// Canaries: secret config values, and secrets that are only recognisable by their key.
const JWT = "CanaryJwt-7d1e93b0a4c6f2e8d5b7a9c1e3f50246"
const REDIS_PW = "CanaryRedisPw-51c0e6"
const DUITKU_KEY = "CanaryDuitkuKey-0b9e1f2a7c3d"
const DB_PW = "CanaryDbPw-e4f1a9"
const KEYED = ["CanaryKeyed-password", "CanaryKeyed-token", "CanaryKeyed-authz", "CanaryKeyed-cookie", "CanaryKeyed-apikey", "CanaryKeyed-api_key", "CanaryKeyed-xapikey", "CanaryKeyed-signature", "CanaryKeyed-jwt", "CanaryKeyed-secret"]
const ALL = [JWT, REDIS_PW, DUITKU_KEY, DB_PW, ...KEYED]

class UpstreamError extends Data.TaggedError("UpstreamError")<{ readonly detail: string; readonly config: unknown }> {}

const capture = async (program: Effect.Effect<void>) => {
  const config = await Effect.runPromise(appConfigFrom({
    JWT_SECRET: JWT,
    REDIS_PASSWORD: REDIS_PW,
    DUITKU_API_KEY: DUITKU_KEY,
    DATABASE_URL: `postgres://app:${DB_PW}@127.0.0.1:5432/lumiku`,
    LOG_LEVEL: "debug",
    LOG_FORMAT: "json"
  }))
  const out = new PassThrough()
  let text = ""
  out.on("data", (c: Buffer) => (text += c.toString()))
  await Effect.runPromise(program.pipe(Effect.provide(makeLoggerLive({ destination: out }).pipe(Layer.provide(Layer.succeed(AppConfig, config))))))
  return text
}

describe("log redaction", () => {
  it("masks secret keys at any depth and every secret config value inside strings, with zero canary hits", async () => {
    const text = await capture(Effect.gen(function*() {
      yield* Effect.logInfo("nested", { level1: { level2: { level3: { password: KEYED[0], keep: "visible-depth-3" } } } })
      yield* Effect.logInfo("keys", {
        a: { b: { token: KEYED[1], authorization: KEYED[2], Cookie: KEYED[3], apiKey: KEYED[4] } },
        c: [{ d: { api_key: KEYED[5], "x-api-key": KEYED[6], signature: KEYED[7], jwt: KEYED[8], clientSecret: KEYED[9] } }]
      })
      yield* Effect.logWarning(`connecting to redis with ${REDIS_PW} and jwt ${JWT}`)
      yield* Effect.logError("upstream failed", new Error(`request signed with ${DUITKU_KEY}`, { cause: new Error(`db ${DB_PW}`) }))
      // An axios-style error whose request config carries the header.
      yield* Effect.fail(new UpstreamError({ detail: `key=${DUITKU_KEY}`, config: { headers: { Authorization: `Bearer ${JWT}` } } })).pipe(
        Effect.catchAllCause((cause) => Effect.logError("job failed", cause))
      )
      yield* Effect.logInfo("annotated").pipe(Effect.annotateLogs({ authorization: `Bearer ${KEYED[2]}`, note: `has ${JWT}` }))
      yield* Effect.logError("defect", Cause.die(new Error(`defect with ${REDIS_PW}`)))
    }))
    const hits = ALL.filter((canary) => text.includes(canary))
    expect(hits).toEqual([])
    // The lines are still there and still useful.
    expect(text).toContain("visible-depth-3")
    expect(text).toContain("connecting to redis with [REDACTED]")
    expect(text).toContain("upstream failed")
    expect(text).toContain("UpstreamError")
    expect(text.split("\n").filter((l) => l.trim() !== "").length).toBe(7)
  })

  it("the redactor masks keys case-insensitively and handles cycles", () => {
    const redactor = makeRedactor(["s3cr3t-value"])
    const cyclic: Record<string, unknown> = { name: "x", Authorization: "Bearer abc" }
    cyclic["self"] = cyclic
    expect(redactor.value(cyclic)).toEqual({ name: "x", Authorization: "[REDACTED]", self: "[Circular]" })
    expect(redactor.text("a s3cr3t-value b s3cr3t-value")).toBe("a [REDACTED] b [REDACTED]")
  })

  it("requests carrying credentials leave no trace of them in the logs", async () => {
    const app = await startApp(testEnv({ JWT_SECRET: JWT, LOG_LEVEL: "debug" }))
    try {
      await fetch(app.url(`/health/liveness?token=${KEYED[1]}`), { headers: { authorization: `Bearer ${JWT}`, cookie: `sid=${KEYED[3]}` } })
      await fetch(app.url(`/nope/${JWT}`), { headers: { "x-api-key": KEYED[6] } })
      await new Promise((r) => setTimeout(r, 50))
      const text = app.logLines().join("\n")
      expect(text).toContain("\"route\":\"/health/liveness\"")
      expect(ALL.filter((canary) => text.includes(canary))).toEqual([])
    } finally {
      await app.close()
    }
  })
})
