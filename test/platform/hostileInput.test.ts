import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { safeIssueMessage } from "../../src/http/platform/echo.js"
import { inspectJson, MAX_JSON_DEPTH } from "../../src/http/platform/jsonBody.js"
import { jsonMediaType } from "../../src/http/platform/mediaType.js"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"
import { freshEmail } from "../support/api.js"

// Hostile and malformed input against the real app: every answer is a 4xx in the one error body,
// and nothing is created.

const PASSWORD = "Correct-Horse-42"
const ALLOWED = "https://app.lumiku.com"
const HOSTILE = "https://evil.example"

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly body: Record<string, any>
}

const send = async (url: string, init: RequestInit): Promise<Answer> => {
  const response = await fetch(url, init)
  const text = await response.text()
  let body: Record<string, any> = {}
  try {
    body = JSON.parse(text) as Record<string, any>
  } catch {
    body = {}
  }
  return { status: response.status, headers: response.headers, text, body }
}

const expectEnvelope = (answer: Answer, status: number, code: string) => {
  expect(answer.status, answer.text.slice(0, 300)).toBe(status)
  expect(answer.body).toMatchObject({ success: false, code })
  expect(answer.body["error"]).toBe(answer.body["message"])
  expect(answer.body["requestId"]).toBe(answer.headers.get("x-request-id"))
}

describe("hostile input helpers (pure)", () => {
  it("parses the media type instead of matching substrings", () => {
    const cases: ReadonlyArray<[string, ReturnType<typeof jsonMediaType>]> = [
      ["application/json", "json"],
      ["application/json; charset=utf-8", "json"],
      ["APPLICATION/JSON", "json"],
      ["application/vnd.api+json", "structured"],
      ["text/plain; x=application/json", undefined],
      ["text/plain;application/json", undefined],
      ["application/jsonp", undefined],
      ["application/json-patch", undefined],
      ["multipart/form-data; boundary=application/json", undefined],
      ["application/x-www-form-urlencoded", undefined],
      ["", undefined],
      ["application/json;;;=", undefined]
    ]
    for (const [header, expected] of cases) expect(jsonMediaType(header), header).toBe(expected)
  })

  it("finds NUL in strings and keys, and nesting past the limit, without recursion", () => {
    expect(inspectJson({ a: [{ b: "x\u0000" }] })).toEqual({ _tag: "NulCharacter", path: ["a", 0, "b"] })
    expect(inspectJson({ ["k\u0000"]: 1 })).toMatchObject({ _tag: "NulCharacter" })
    expect(inspectJson({ a: "\\u0000 is text, not NUL" })).toBeUndefined()
    const nest = (depth: number): unknown => {
      let value: unknown = 1
      for (let i = 0; i < depth; i++) value = [value]
      return value
    }
    expect(inspectJson(nest(MAX_JSON_DEPTH))).toBeUndefined()
    expect(inspectJson(nest(MAX_JSON_DEPTH + 1))).toEqual({ _tag: "TooDeep", maxDepth: MAX_JSON_DEPTH })
    expect(inspectJson(nest(1_000_000))).toMatchObject({ _tag: "TooDeep" })
  })

  it("keeps at most ~100 characters of a plain value, none of a secret field, none of an object", () => {
    const long = `Expected a string at most 100 character(s) long, actual "${"x".repeat(5000)}"`
    expect(safeIssueMessage(["name"], long).length).toBeLessThan(250)
    expect(safeIssueMessage(["name"], long)).toContain("actual \"xxx")
    for (const field of ["password", "currentPassword", "newPassword", "token", "refreshToken", "secret", "apiKey", "signature"]) {
      expect(safeIssueMessage([field], `Expected string, actual "hunter2-value"`), field).toBe("Expected string")
      expect(safeIssueMessage(["nested", field], `Unable to decode "hunter2-value" into a number`), field).toBe("is invalid")
      expect(safeIssueMessage([field], "is missing"), field).toBe("is missing")
    }
    const file = `Expected string, actual {"_id":"PersistedFile","path":"/tmp/upload-1234/x.txt"}`
    expect(safeIssueMessage(["title"], file)).toBe("Expected string")
  })
})

describe("hostile input to the real app", () => {
  let app: InProcessApp
  const db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
  const usersWith = async (email: string) =>
    Number((await db.query("SELECT count(*) AS n FROM users WHERE email = $1", [email.toLowerCase()])).rows[0].n)

  beforeAll(async () => {
    const extraRoutes = HttpApiBuilder.Router.use((router) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        // A query that hands Postgres a NUL character, as a handler without the schema checks would.
        yield* router.post("/__hostile/nul-to-postgres", Effect.gen(function*() {
          yield* sql`SELECT ${"a\u0000b"}::text AS value`.pipe(Effect.orDie)
          return HttpServerResponse.unsafeJson({ stored: true })
        }))
      })
    )
    app = await startApp(testEnv({
      ROLE: "api",
      CORS_ORIGIN: "https://lumiku.com,https://*.lumiku.com",
      RATE_LIMIT_LOGIN: "1000 per 1 minute",
      RATE_LIMIT_REGISTER: "1000 per 1 minute",
      LOG_LEVEL: "info"
    }), { extraRoutes })
  })
  afterAll(async () => {
    await app?.close()
    await db.end()
  })

  const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body)
  })

  describe("cross-site requests", () => {
    const forms = (email: string): ReadonlyArray<[string, () => RequestInit]> => [
      ["urlencoded", () => ({ method: "POST", body: new URLSearchParams({ email, password: PASSWORD, refreshToken: "x" }) })],
      ["multipart", () => {
        const form = new FormData()
        form.set("email", email)
        form.set("password", PASSWORD)
        form.set("refreshToken", "x")
        return { method: "POST", body: form }
      }],
      ["text/plain", () => ({ method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ email, password: PASSWORD, refreshToken: "x" }) })],
      ["text/plain; x=application/json", () => ({ method: "POST", headers: { "content-type": "text/plain; x=application/json" }, body: JSON.stringify({ email, password: PASSWORD, refreshToken: "x" }) })],
      ["multipart without a boundary", () => ({ method: "POST", headers: { "content-type": "multipart/form-data" }, body: `--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n${email}\r\n--x--\r\n` })],
      ["broken multipart", () => ({ method: "POST", headers: { "content-type": "multipart/form-data; boundary=zz" }, body: "--zz\r\nnonsense" })],
      ["a body without a content type", () => ({ method: "POST", body: new Blob([JSON.stringify({ email, password: PASSWORD, refreshToken: "x" })]) })]
    ]

    for (const path of ["/api/auth/register", "/api/auth/login", "/api/auth/refresh"]) {
      it(`${path} answers 415 to every body that is not JSON, and creates nothing`, async () => {
        const email = freshEmail("hostile")
        for (const [name, init] of forms(email)) {
          const answer = await send(app.url(path), init())
          expectEnvelope(answer, 415, "UNSUPPORTED_MEDIA_TYPE")
          expect(answer.status, name).toBe(415)
        }
        expect(await usersWith(email)).toBe(0)
      })
    }

    it("a page cannot lock an account out with cross-site form posts", async () => {
      const email = freshEmail("hostile")
      expect((await send(app.url("/api/auth/register"), json({ email, password: PASSWORD }))).status).toBe(201)
      for (let i = 0; i < 8; i++) {
        const form = await send(app.url("/api/auth/login"), { method: "POST", body: new URLSearchParams({ email, password: `wrong-${i}` }) })
        expect(form.status).toBe(415)
        const text = await send(app.url("/api/auth/login"), { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ email, password: `wrong-${i}` }) })
        expect(text.status).toBe(415)
      }
      expect((await send(app.url("/api/auth/login"), json({ email, password: PASSWORD }))).status).toBe(200)
    })

    it("accepts application/json with parameters and application/*+json", async () => {
      for (const contentType of ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]) {
        const email = freshEmail("hostile")
        const answer = await send(app.url("/api/auth/register"), { method: "POST", headers: { "content-type": contentType }, body: JSON.stringify({ email, password: PASSWORD }) })
        expect(answer.status, contentType).toBe(201)
      }
    })

    it("an endpoint with a payload and no body at all is still 400", async () => {
      const answer = await send(app.url("/api/auth/login"), { method: "POST", headers: { "content-type": "application/json" } })
      expect(answer.status).toBe(400)
      expect(answer.body["success"]).toBe(false)
      const bare = await send(app.url("/api/auth/login"), { method: "POST" })
      expect(bare.status).toBe(400)
    })

    it("refuses an unauthenticated state-changing request from a denied Origin with 403, creating nothing", async () => {
      for (const origin of [HOSTILE, "null", "https://lumiku.com.evil.com", "http://app.lumiku.com"]) {
        const email = freshEmail("hostile")
        const answer = await send(app.url("/api/auth/register"), json({ email, password: PASSWORD }, { origin }))
        expectEnvelope(answer, 403, "FORBIDDEN")
        expect(answer.headers.get("access-control-allow-origin")).toBeNull()
        expect(await usersWith(email)).toBe(0)
      }
      // Also before routing and before the body is looked at.
      expectEnvelope(await send(app.url("/api/auth/login"), { method: "POST", headers: { origin: HOSTILE, "content-type": "text/plain" }, body: "x" }), 403, "FORBIDDEN")
      expectEnvelope(await send(app.url("/api/auth/logout"), { method: "DELETE", headers: { origin: HOSTILE } }), 403, "FORBIDDEN")
    })

    it("an allowed Origin and no Origin register normally; a bearer request is not judged by its Origin", async () => {
      const allowedEmail = freshEmail("hostile")
      const allowed = await send(app.url("/api/auth/register"), json({ email: allowedEmail, password: PASSWORD }, { origin: ALLOWED }))
      expect(allowed.status).toBe(201)
      expect(allowed.headers.get("access-control-allow-origin")).toBe(ALLOWED)
      expect(await usersWith(allowedEmail)).toBe(1)

      const plainEmail = freshEmail("hostile")
      const plain = await send(app.url("/api/auth/register"), json({ email: plainEmail, password: PASSWORD }))
      expect(plain.status).toBe(201)
      expect(await usersWith(plainEmail)).toBe(1)

      const token = String(plain.body["data"].token)
      const logout = await send(app.url("/api/auth/logout"), { method: "POST", headers: { origin: HOSTILE, authorization: `Bearer ${token}` } })
      expect(logout.status).toBe(200)

      // A 415 for an allowed origin stays readable by that origin.
      const refused = await send(app.url("/api/auth/login"), { method: "POST", headers: { origin: ALLOWED, "content-type": "text/plain" }, body: "x" })
      expectEnvelope(refused, 415, "UNSUPPORTED_MEDIA_TYPE")
      expect(refused.headers.get("access-control-allow-origin")).toBe(ALLOWED)
    })
  })

  describe("bad input answers 4xx", () => {
    let token = ""
    beforeAll(async () => {
      const r = await send(app.url("/api/auth/register"), json({ email: freshEmail("hostile"), password: PASSWORD }))
      token = String(r.body["data"].token)
    })

    it("a history cursor that is not a safe ledger id is 400 VALIDATION_ERROR", async () => {
      for (const cursor of ["9007199254740993", "99999999999999999999", "-1", "abc", "1e3", "1.5", "", "0x10", " 1"]) {
        const answer = await send(app.url(`/api/credits/history?cursor=${encodeURIComponent(cursor)}`), { headers: { authorization: `Bearer ${token}` } })
        expectEnvelope(answer, 400, "VALIDATION_ERROR")
      }
      const ok = await send(app.url("/api/credits/history?cursor=9007199254740991"), { headers: { authorization: `Bearer ${token}` } })
      expect(ok.status).toBe(200)
    })

    it("a NUL character in any string of a JSON body is 400 VALIDATION_ERROR and never reaches Postgres", async () => {
      const email = freshEmail("hostile")
      const bodies: ReadonlyArray<[string, unknown]> = [
        ["email", { email: `a\u0000${email}`, password: PASSWORD }],
        ["name", { email, password: PASSWORD, name: "Bu\u0000di" }],
        ["password", { email, password: `${PASSWORD}\u0000` }],
        ["a key", { email, password: PASSWORD, ["x\u0000"]: 1 }]
      ]
      for (const [where, body] of bodies) {
        const answer = await send(app.url("/api/auth/register"), json(body))
        expectEnvelope(answer, 400, "VALIDATION_ERROR")
        expect(answer.body["error"], where).toContain("U+0000")
      }
      expect(await usersWith(email)).toBe(0)
      const login = await send(app.url("/api/auth/login"), json({ email: `x\u0000@example.com`, password: PASSWORD }))
      expectEnvelope(login, 400, "VALIDATION_ERROR")
      const errors = app.logLines().filter((l) => l.includes("22021"))
      expect(errors.filter((l) => JSON.parse(l)["level"] !== "warn")).toEqual([])
    })

    it("a Postgres data exception caused by input (SQLSTATE 22021) is 400, not a 500 defect", async () => {
      const answer = await send(app.url("/__hostile/nul-to-postgres"), { method: "POST" })
      expectEnvelope(answer, 400, "VALIDATION_ERROR")
      expect(answer.text).not.toContain("22021")
    })

    it("a JSON body nested 3,000 or 100,000 levels deep is 400", async () => {
      for (const depth of [3_000, 100_000]) {
        for (const body of ["[".repeat(depth) + "]".repeat(depth), `{"email":${"[".repeat(depth)}${"]".repeat(depth)},"password":"x"}`]) {
          const answer = await send(app.url("/api/auth/register"), { method: "POST", headers: { "content-type": "application/json" }, body })
          expectEnvelope(answer, 400, "MALFORMED_REQUEST")
          expect(answer.text.length).toBeLessThan(1000)
        }
      }
      // A body as deep as the limit is judged by the schema as usual.
      const shallow = await send(app.url("/api/auth/register"), { method: "POST", headers: { "content-type": "application/json" }, body: `{"email":${"[".repeat(10)}${"]".repeat(10)},"password":"x"}` })
      expectEnvelope(shallow, 400, "VALIDATION_ERROR")
    })

    it("a validation message echoes at most ~100 characters of a value and none of a secret", async () => {
      const huge = "n".repeat(900_000)
      const big = await send(app.url("/api/auth/register"), json({ email: freshEmail("hostile"), password: PASSWORD, name: huge }))
      expectEnvelope(big, 400, "VALIDATION_ERROR")
      expect(big.text.length).toBeLessThan(2_000)
      expect(big.text).not.toContain("n".repeat(101))

      const path = "/api/" + "p".repeat(5_000)
      const notFound = await send(app.url(path), {})
      expectEnvelope(notFound, 404, "NOT_FOUND")
      expect(notFound.text.length).toBeLessThan(1_000)

      const secret = "Sup3r-Secret-" + "s".repeat(1_100)
      const wrongType = { password: 12345678901, refreshToken: ["a", "b"] }
      for (const body of [
        { email: freshEmail("hostile"), password: secret },
        { email: freshEmail("hostile"), ...wrongType }
      ]) {
        const answer = await send(app.url("/api/auth/register"), json(body))
        expectEnvelope(answer, 400, "VALIDATION_ERROR")
        expect(answer.text).not.toContain("Sup3r-Secret")
        expect(answer.text).not.toContain("12345678901")
      }
      const refresh = await send(app.url("/api/auth/refresh"), json({ refreshToken: "T0ken-" + "t".repeat(300) }))
      expectEnvelope(refresh, 400, "VALIDATION_ERROR")
      expect(refresh.text).not.toContain("T0ken-")
      expect(app.logLines().filter((l) => l.includes("Sup3r-Secret") || l.includes("T0ken-"))).toEqual([])
    })
  })
})
