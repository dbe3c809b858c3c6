import { PassThrough } from "node:stream"
import { Cause, Data, Effect, Layer, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { makeLoggerLive } from "../../src/layers/platform/LoggerLive.js"
import { isSecretKey, makeRedactor } from "../../src/services/platform/redact.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { startApp } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"

// Canaries: secret config values, and secrets that are only recognisable by their key.
const JWT = "CanaryJwt-7d1e93b0a4c6f2e8d5b7a9c1e3f50246"
const REDIS_PW = "CanaryRedisPw-51c0e6"
const DUITKU_KEY = "CanaryDuitkuKey-0b9e1f2a7c3d"
const DB_PW = "CanaryDbPw-e4f1a9"
const KEYED = ["CanaryKeyed-password", "CanaryKeyed-token", "CanaryKeyed-authz", "CanaryKeyed-cookie", "CanaryKeyed-apikey", "CanaryKeyed-api_key", "CanaryKeyed-xapikey", "CanaryKeyed-signature", "CanaryKeyed-jwt", "CanaryKeyed-secret"]
const ALL = [JWT, REDIS_PW, DUITKU_KEY, DB_PW, ...KEYED]

class UpstreamError extends Data.TaggedError("UpstreamError")<{ readonly detail: string; readonly config: unknown }> {}

const capture = async (program: Effect.Effect<void>, format: "json" | "pretty" = "json") => {
  const config = await Effect.runPromise(appConfigFrom({
    JWT_SECRET: JWT,
    REDIS_PASSWORD: REDIS_PW,
    DUITKU_API_KEY: DUITKU_KEY,
    DATABASE_URL: `postgres://app:${DB_PW}@127.0.0.1:5432/lumiku`,
    LOG_LEVEL: "debug",
    LOG_FORMAT: format
  }))
  const out = new PassThrough()
  let text = ""
  out.on("data", (c: Buffer) => (text += c.toString()))
  await Effect.runPromise(program.pipe(Effect.provide(makeLoggerLive({ destination: out }).pipe(Layer.provide(Layer.succeed(AppConfig, config))))))
  await new Promise((resolve) => setImmediate(resolve))
  return text
}

const jsonLines = (text: string): Array<Record<string, unknown>> =>
  text.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as Record<string, unknown>)

// Canaries of secrets that only their shape or their place gives away (issue 8).
const C = {
  queryToken: "CanaryQueryToken-a81f",
  queryApiKey: "CanaryQueryApiKey-93b2",
  annotationToken: "CanaryAnnotToken-5c0d",
  bearerInError: "CanaryBearerErr-7e41aa",
  causeToken: "CanaryCauseToken-2f9c",
  failToken: "CanaryFailToken-d3a7",
  dieBearer: "CanaryDieBearer-0b6e55",
  jwtSignature: "CanaryJwtSig_4Qw8Zk",
  jsonPassword: "CanaryJsonPw-61ad",
  doubleJsonPassword: "CanaryJsonPw2-77c3",
  nestedUnderSecret: "CanaryNested-9e2b",
  formPassword: "CanaryFormPw-c4e8",
  cookieSid: "CanaryCookieSid-18f0",
  cookieOther: "CanaryCookieOther-aa31",
  setCookie: "CanarySetCookie-5d72",
  pwd: "CanaryKey-pwd-1",
  auth: "CanaryKey-auth-2",
  session: "CanaryKey-session-3",
  sid: "CanaryKey-sid-4",
  accessKeyId: "CanaryKey-accessKeyId-5",
  userinfo: "CanaryUserinfo-3b9f",
  urlObject: "CanaryUrlObject-6a1c",
  mapToken: "CanaryMapToken-0f3e",
  spanToken: "CanarySpanToken-e7d1",
  keyValueMessage: "CanaryColonPw-2d6b",
  failedObject: "CanaryFailedObject-8c4a",
  parseError: "CanaryParseError-1e7b",
  hfToken: "hf_CanaryHfToken8e21abcdef0123"
}
// A JWT by shape: base64url `{"alg":"HS256"}`, a payload, and a signature carrying its canary.
const USER_JWT = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.${C.jwtSignature}`
const BASIC_PLAIN = "ann:CanaryBasicPw-44e0"
const BASIC = Buffer.from(BASIC_PLAIN).toString("base64")
const SHAPED = [...Object.values(C), USER_JWT, "eyJzdWIiOiJ1c2VyLTQyIn0", BASIC, BASIC_PLAIN]

class PaymentDeclined extends Error {}

/** Every leak of issue 8, once each, with something non-secret next to it that must survive. */
const leaks = Effect.gen(function*() {
  yield* Effect.logInfo(`GET https://api.example.com/cb?token=${C.queryToken}&page=2 and ?api_key=${C.queryApiKey}&lang=id`)
  yield* Effect.logInfo("fields", { url: `/v1/run?page=3&token=${C.queryToken}`, callback: `https://x.example/hook?api_key=${C.queryApiKey}` })
  yield* Effect.logInfo("annotated").pipe(Effect.annotateLogs({ upstream: `https://up.example/a?token=${C.annotationToken}&keep=yes`, session: C.session }))
  yield* Effect.logError("upstream refused", new Error(`sent Authorization: Bearer ${C.bearerInError} to upstream`, {
    cause: new Error(`retry of https://up.example/v?token=${C.causeToken} failed`, { cause: new Error(`user jwt ${USER_JWT} expired`) })
  }))
  yield* Effect.fail(new PaymentDeclined(`card declined, token=${C.failToken}`)).pipe(Effect.catchAllCause((cause) => Effect.logError("charge failed", cause)))
  yield* Effect.logError("defect", Cause.die(new Error(`bearer ${C.dieBearer}`, { cause: new Error(`jwt=${USER_JWT}`) })))
  yield* Effect.logInfo(`login body {"user":"ann","password":"${C.jsonPassword}"}`)
  yield* Effect.logInfo("raw body", { body: JSON.stringify(JSON.stringify({ user: "ann", password: C.doubleJsonPassword })) })
  yield* Effect.logInfo("nested json", { body: `{"credentials":{"user":"bob","key":"${C.nestedUnderSecret}"},"plan":"pro"}` })
  yield* Effect.logInfo("form", { body: `user=ann&password=${C.formPassword}&remember=1` })
  yield* Effect.logInfo(`Cookie: sid=${C.cookieSid}; theme=${C.cookieOther}`)
  yield* Effect.logInfo("response", { headers: `Set-Cookie: lumiku_s=${C.setCookie}; Path=/; HttpOnly` })
  yield* Effect.logInfo("keys", { creds: { pwd: C.pwd, auth: C.auth, session: C.session, sid: C.sid, accessKeyId: C.accessKeyId } })
  yield* Effect.logInfo("secret as key", { sessions: { [DUITKU_KEY]: "user-1", [JWT]: { ok: true } } })
  yield* Effect.logInfo(`connecting redis://:${C.userinfo}@cache.internal:6379/0`)
  yield* Effect.logInfo("url object", { target: new URL(`https://x.example/p?token=${C.urlObject}&q=cats`) })
  yield* Effect.logInfo("map", { tokens: new Map([["token", C.mapToken]]) })
  yield* Effect.logInfo(`proxy sent Basic ${BASIC} upstream`)
  yield* Effect.logInfo(`password: ${C.keyValueMessage} was rejected`)
  yield* Effect.logWarning(`image provider refused a call made with ${C.hfToken} (a Hugging Face token by shape)`)
  yield* Effect.logInfo("span").pipe(Effect.withLogSpan(`fetch?token=${C.spanToken}`))
  yield* Effect.fail({ _tag: "Denied", reason: "expired", token: C.failedObject }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("denied", cause)))
  // A payload that no longer decodes: the parse error quotes the value it got.
  yield* Schema.decodeUnknown(Schema.Number)({ user: "ann", password: C.parseError }).pipe(Effect.catchAllCause((cause) => Effect.logError("undecodable payload", cause)))
})
const LEAK_LINES = 23

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

  for (const format of ["json", "pretty"] as const) {
    it(`secrets recognisable by shape or place never reach a ${format} line`, async () => {
      const text = await capture(leaks, format)
      expect(SHAPED.filter((canary) => text.includes(canary))).toEqual([])
      expect(ALL.filter((canary) => text.includes(canary))).toEqual([])
      // What is not secret is still there.
      expect(text).toMatch(/user\\?":\\?"ann/)
      for (const kept of ["page=2", "lang=id", "keep=yes", "user=ann", "remember=1", "plan", "cache.internal:6379", "q=cats", "was rejected", "PaymentDeclined", "card declined", "upstream refused", "user-1", "expired", "Expected number"]) {
        expect(text, kept).toContain(kept)
      }
      if (format === "json") expect(jsonLines(text)).toHaveLength(LEAK_LINES)
    })
  }

  it("keeps counts and other fields that only describe a secret", async () => {
    const [usage] = jsonLines(await capture(Effect.logInfo("usage", { tokenCount: 5, sessionCount: 2, passwordLength: 12, author: "ann", tokenExpiresAt: "2026-01-01" })))
    expect(usage).toMatchObject({ tokenCount: 5, sessionCount: 2, passwordLength: 12, author: "ann", tokenExpiresAt: "2026-01-01" })
  })

  it("a redacted error keeps its type and its message minus the secret", async () => {
    const text = await capture(Effect.gen(function*() {
      yield* Effect.logError("declined", new PaymentDeclined(`card declined for token=${C.failToken}`))
      yield* Effect.logError("tagged", new UpstreamError({ detail: "timeout", config: { retries: 2 } }))
      yield* Effect.fail(new PaymentDeclined("card declined")).pipe(Effect.catchAllCause((cause) => Effect.logError("charge failed", cause)))
    }))
    const [declined, tagged, failed] = jsonLines(text)
    expect(declined!["err"]).toMatchObject({ type: "PaymentDeclined", message: "card declined for token=[REDACTED]" })
    expect(tagged!["err"]).toMatchObject({ type: "UpstreamError", _tag: "UpstreamError", detail: "timeout", config: { retries: 2 } })
    expect(failed).toMatchObject({ errType: "PaymentDeclined" })
    expect(String(failed!["err"])).toContain("card declined")
  })

  it("a plain object's message key is kept", async () => {
    const [plain] = jsonLines(await capture(Effect.logInfo("plain", { result: { message: "hello there", code: 7 } })))
    expect(plain!["result"]).toEqual({ message: "hello there", code: 7 })
  })

  it("a logged object cannot override the line's level, time or message (json)", async () => {
    const text = await capture(Effect.logInfo("real message", { level: "fatal", time: "1999-01-01T00:00:00Z", msg: "forged", service: "other", pid: 1 }))
    const [line] = jsonLines(text)
    // Duplicate keys: JSON.parse keeps the last, as a log shipper would.
    expect(line).toMatchObject({ level: 30, msg: "real message", service: "lumiku-backend", _level: "fatal", _time: "1999-01-01T00:00:00Z", _msg: "forged", _service: "other", _pid: 1 })
    expect(line!["time"]).not.toBe("1999-01-01T00:00:00Z")
    expect(line!["pid"]).toBe(process.pid)
  })

  it("in pretty mode a logged object cannot change the level and a newline cannot forge a line", async () => {
    const text = await capture(Effect.gen(function*() {
      yield* Effect.logInfo("first", { level: 60, msg: "forged" })
      yield* Effect.logInfo("second\n[12:00:00.000] FATAL: forged line\r\n\u001b[31mred")
      yield* Effect.logInfo("third").pipe(Effect.annotateLogs({ note: "a\n[12:00:00.000] FATAL: forged annotation" }))
      yield* Effect.logInfo("fourth", { "k\n[12:00:00.000] FATAL: forged key": 1 })
      const error = new Error("fifth")
      error.stack = "Error: fifth\n[12:00:00.000] FATAL: in a stack\r[12:00:00.000] FATAL: after a carriage return\u001b[2K"
      yield* Effect.logInfo("fifth", error)
    }), "pretty")
    const heads = text.split("\n").filter((line) => /^\[\d/.test(line))
    expect(heads).toHaveLength(5)
    expect(text).not.toContain("\r")
    expect(heads.every((line) => line.includes("INFO"))).toBe(true)
    // What remains of the forgeries is escaped inside its own line, or indented in a stack.
    expect(text.split("\n").filter((line) => /^\S.*FATAL/.test(line) && !line.includes("INFO: second"))).toEqual([])
    expect(text).not.toContain("\u001b")
    expect(text).toContain("second\\n[12:00:00.000] FATAL")
  })

  it("the redactor masks keys case-insensitively and handles cycles", () => {
    const redactor = makeRedactor(["s3cr3t-value"])
    const cyclic: Record<string, unknown> = { name: "x", Authorization: "Bearer abc" }
    cyclic["self"] = cyclic
    expect(redactor.value(cyclic)).toEqual({ name: "x", Authorization: "[REDACTED]", self: "[Circular]" })
    expect(redactor.text("a s3cr3t-value b s3cr3t-value")).toBe("a [REDACTED] b [REDACTED]")
    expect(makeRedactor(["p4ss+w(o)rd*|$"]).text("x p4ss+w(o)rd*|$ y")).toBe("x [REDACTED] y")
  })

  it("names secret keys by word, and keys that describe a secret are kept", () => {
    for (const key of ["pwd", "auth", "session", "sid", "accessKeyId", "AWS_SECRET_ACCESS_KEY", "sessionId", "x-auth-token", "connect.sid", "basicAuth", "password"]) {
      expect(isSecretKey(key), key).toBe(true)
    }
    for (const key of ["tokenCount", "sessionCount", "passwordLength", "author", "side", "cwd", "route", "status", "requestId", "durationMs"]) {
      expect(isSecretKey(key), key).toBe(false)
    }
  })

  it("masks by shape inside strings and leaves ordinary text alone", () => {
    const redactor = makeRedactor([])
    expect(redactor.text("GET /a?token=abc123&page=2")).toBe("GET /a?token=[REDACTED]&page=2")
    expect(redactor.text("{\"user\":\"ann\",\"password\":\"p\\\"w\"}")).toBe("{\"user\":\"ann\",\"password\":\"[REDACTED]\"}")
    expect(redactor.text("{\"auth\":{\"user\":\"u\",\"key\":\"k\"},\"n\":1}")).toBe("{\"auth\":[REDACTED],\"n\":1}")
    expect(redactor.text("Authorization: Bearer abc.def-ghi")).toBe("Authorization: [REDACTED]")
    expect(redactor.text("retry with bearer abc.def-ghi now")).toBe("retry with bearer [REDACTED] now")
    expect(redactor.text(`x ${USER_JWT} y`)).toBe("x [REDACTED] y")
    expect(redactor.text("basic plan, Basic information")).toBe("basic plan, Basic information")
    expect(redactor.text(`auth basic ${Buffer.from("u:p4ss").toString("base64")} sent`)).toBe("auth basic [REDACTED] sent")
    expect(redactor.text("at 12:30:45 user=ann status: ok, 3 = 3")).toBe("at 12:30:45 user=ann status: ok, 3 = 3")
    expect(redactor.text("https://example.com/a?b=c#d")).toBe("https://example.com/a?b=c#d")
  })

  it("requests carrying credentials leave no trace of them in the logs", async () => {
    const app = await startApp(testEnv({ JWT_SECRET: JWT, LOG_LEVEL: "debug" }))
    try {
      await fetch(app.url(`/health/liveness?token=${KEYED[1]}`), { headers: { authorization: `Bearer ${JWT}`, cookie: `sid=${KEYED[3]}` } })
      await fetch(app.url(`/nope/${JWT}`), { headers: { "x-api-key": KEYED[6] } })
      await fetch(app.url(`/nope/${USER_JWT}?api_key=${C.queryApiKey}`), { headers: { cookie: `sid=${C.cookieSid}` } })
      await new Promise((r) => setTimeout(r, 50))
      const text = app.logLines().join("\n")
      expect(text).toContain("\"route\":\"/health/liveness\"")
      expect(ALL.filter((canary) => text.includes(canary))).toEqual([])
      expect(SHAPED.filter((canary) => text.includes(canary))).toEqual([])
    } finally {
      await app.close()
    }
  })
})
