import { request as httpRequest, type IncomingHttpHeaders } from "node:http"
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type CorsPolicy,
  DEFAULT_HEADERS,
  DEFAULT_METHODS,
  DEFAULT_ORIGINS,
  EXPOSED_HEADERS,
  isAllowedOrigin,
  makeCorsPolicy,
  parseOriginEntries,
  parseOriginEntry
} from "../../src/services/platform/CorsPolicy.js"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"
import { productionEnv, testEnv } from "../support/env.js"

const policyOf = (origins: ReadonlyArray<string>, wildcardDepth: "one" | "any" = "one"): CorsPolicy =>
  makeCorsPolicy({ origins: Either.getOrThrow(parseOriginEntries(origins)), wildcardDepth })

const load = (env: Record<string, string>) => Effect.runSync(Effect.either(appConfigFrom(env)))
const problemsOf = (env: Record<string, string>): ReadonlyArray<string> => {
  const result = load(env)
  if (Either.isRight(result)) throw new Error("expected the configuration to be rejected")
  return result.left.problems
}

describe("CORS origin policy (pure)", () => {
  const policy = policyOf(["https://lumiku.com", "https://app.lumiku.com", "https://*.lumiku.com", "http://localhost:5173"])

  const allowed: ReadonlyArray<[string, string]> = [
    ["the apex (exact entry)", "https://lumiku.com"],
    ["an exact subdomain", "https://app.lumiku.com"],
    ["one label under the wildcard", "https://x.lumiku.com"],
    ["a punycode label under the wildcard", "https://xn--bcher-kva.lumiku.com"],
    ["the dev server with its port", "http://localhost:5173"]
  ]
  for (const [name, origin] of allowed) {
    it(`allows ${name}: ${origin}`, () => expect(isAllowedOrigin(policy, origin)).toBe(true))
  }

  const denied: ReadonlyArray<[string, string | undefined]> = [
    ["no Origin header", undefined],
    ["an empty Origin", ""],
    ["null (sandboxed iframe, file:, data:)", "null"],
    ["a suffix look-alike", "https://evil-lumiku.com"],
    ["a suffix look-alike without separator", "https://evillumiku.com"],
    ["the apex as a prefix of another domain", "https://lumiku.com.evil.com"],
    ["a subdomain as a prefix of another domain", "https://app.lumiku.com.evil.com"],
    ["an unescaped-dot look-alike", "https://appxlumiku.com"],
    ["http instead of https", "http://app.lumiku.com"],
    ["http under the wildcard", "http://x.lumiku.com"],
    ["another port on an exact entry", "https://app.lumiku.com:8443"],
    ["another port under the wildcard", "https://x.lumiku.com:8443"],
    ["an explicit default port (browsers omit it)", "https://app.lumiku.com:443"],
    ["another port on localhost", "http://localhost:5174"],
    ["localhost without its port", "http://localhost"],
    ["https on the http localhost entry", "https://localhost:5173"],
    ["a trailing dot on an exact entry", "https://app.lumiku.com."],
    ["a trailing dot on the apex", "https://lumiku.com."],
    ["a trailing dot under the wildcard", "https://x.lumiku.com."],
    ["a percent-encoded backtick after the host", "https://lumiku.com%60.evil.com"],
    ["a raw backtick after the host", "https://lumiku.com`.evil.com"],
    ["an underscore after the host", "https://lumiku.com_.evil.com"],
    ["an underscore label under the wildcard", "https://x_y.lumiku.com"],
    ["userinfo naming the apex", "https://lumiku.com@evil.com"],
    ["userinfo naming an allowed subdomain", "https://app.lumiku.com@evil.com"],
    ["userinfo on an allowed host", "https://user:pw@app.lumiku.com"],
    ["a trailing slash", "https://app.lumiku.com/"],
    ["a path", "https://app.lumiku.com/path"],
    ["an allowed origin as a path of another", "https://evil.com/https://app.lumiku.com"],
    ["a query", "https://app.lumiku.com?x=1"],
    ["two origins joined by a comma", "https://app.lumiku.com,https://evil.com"],
    ["two origins joined by a comma and space", "https://app.lumiku.com, https://evil.com"],
    ["an allowed origin after a denied one", "https://evil.com, https://app.lumiku.com"],
    ["two labels under a one-label wildcard", "https://a.b.lumiku.com"],
    ["an empty label", "https://.lumiku.com"],
    ["a literal wildcard", "https://*.lumiku.com"],
    ["upper case (never sent by a browser)", "HTTPS://APP.LUMIKU.COM"],
    ["mixed case host (never sent by a browser)", "https://App.lumiku.com"],
    ["leading whitespace", " https://app.lumiku.com"],
    ["a ws: scheme (WebSocket Origins are page origins)", "wss://app.lumiku.com"],
    ["garbage", "not an origin"]
  ]
  for (const [name, origin] of denied) {
    it(`denies ${name}: ${JSON.stringify(origin)}`, () => expect(isAllowedOrigin(policy, origin)).toBe(false))
  }

  it("a wildcard never covers its apex, and exact entries need no wildcard", () => {
    const wildcardOnly = policyOf(["https://*.lumiku.com"])
    expect(isAllowedOrigin(wildcardOnly, "https://lumiku.com")).toBe(false)
    expect(isAllowedOrigin(wildcardOnly, "https://app.lumiku.com")).toBe(true)
    const exactOnly = policyOf(["https://app.lumiku.com"])
    expect(isAllowedOrigin(exactOnly, "https://x.lumiku.com")).toBe(false)
  })

  it("a wildcard with a port matches that port only", () => {
    const withPort = policyOf(["https://*.lumiku.com:8443"])
    expect(isAllowedOrigin(withPort, "https://x.lumiku.com:8443")).toBe(true)
    expect(isAllowedOrigin(withPort, "https://x.lumiku.com")).toBe(false)
    expect(isAllowedOrigin(withPort, "https://x.lumiku.com:8444")).toBe(false)
  })

  it("any-depth wildcards match one or more labels, and nothing else", () => {
    const deep = policyOf(["https://*.lumiku.com"], "any")
    expect(isAllowedOrigin(deep, "https://x.lumiku.com")).toBe(true)
    expect(isAllowedOrigin(deep, "https://a.b.lumiku.com")).toBe(true)
    expect(isAllowedOrigin(deep, "https://a.b.c.lumiku.com")).toBe(true)
    for (const origin of ["https://lumiku.com", "https://a..lumiku.com", "https://a.b.lumiku.com.evil.com", "https://a_b.c.lumiku.com", "http://a.b.lumiku.com", "https://a.b.lumiku.com.", "https://a.evil-lumiku.com"]) {
      expect(isAllowedOrigin(deep, origin), origin).toBe(false)
    }
  })

  it("an empty list allows nothing", () => {
    expect(isAllowedOrigin(policyOf([]), "http://localhost:5173")).toBe(false)
  })
})

describe("CORS configuration", () => {
  it("defaults: the dev server, one-label wildcards, the old methods and headers", () => {
    const config = Either.getOrThrow(load({}))
    expect(config.cors.origins).toEqual(["http://localhost:5173"])
    expect(DEFAULT_ORIGINS).toEqual([Either.getOrThrow(parseOriginEntry("http://localhost:5173"))])
    expect(config.cors.policy.wildcardDepth).toBe("one")
    expect(config.cors.policy.allowMethods).toBe(DEFAULT_METHODS.join(", "))
    expect(config.cors.policy.allowHeaders).toBe(DEFAULT_HEADERS.join(", "))
    expect(DEFAULT_METHODS).toEqual(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    expect(DEFAULT_HEADERS).toEqual(["Content-Type", "Authorization", "X-Requested-With", "Accept", "Origin", "X-Request-Id", "Idempotency-Key"])
  })

  it("reads entries case-insensitively into the form browsers send", () => {
    const config = Either.getOrThrow(load({ CORS_ORIGIN: " HTTPS://App.Lumiku.com , https://*.LUMIKU.com:8443 " }))
    expect(config.cors.origins).toEqual(["https://app.lumiku.com", "https://*.lumiku.com:8443"])
    expect(isAllowedOrigin(config.cors.policy, "https://app.lumiku.com")).toBe(true)
  })

  it("reads CORS_WILDCARD_DEPTH, CORS_METHODS and CORS_HEADERS", () => {
    const config = Either.getOrThrow(load({ CORS_WILDCARD_DEPTH: "any", CORS_METHODS: "get, patch,GET", CORS_HEADERS: "Content-Type,X-Custom" }))
    expect(config.cors.policy.wildcardDepth).toBe("any")
    expect(config.cors.policy.allowMethods).toBe("GET, PATCH")
    expect(config.cors.policy.allowHeaders).toBe("Content-Type, X-Custom")
  })

  const bad: ReadonlyArray<[string, string]> = [
    ["a wildcard with no base", "https://*."],
    ["a bare *", "*"],
    ["two wildcards", "https://*.*.com"],
    ["a wildcard inside a label", "https://*lumiku.com"],
    ["a wildcard in the middle", "https://app.*.lumiku.com"],
    ["a wildcard over a top-level domain", "https://*.com"],
    ["a wildcard in an IP address", "https://*.127.0.0.1"],
    ["a path", "https://app.lumiku.com/path"],
    ["a trailing slash", "https://app.lumiku.com/"],
    ["userinfo", "https://user@app.lumiku.com"],
    ["userinfo naming another host", "https://app.lumiku.com@evil.com"],
    ["no scheme", "lumiku.com"],
    ["null", "null"],
    ["another scheme", "ftp://lumiku.com"],
    ["an explicit default port", "https://app.lumiku.com:443"],
    ["a trailing dot", "https://app.lumiku.com."],
    ["a percent-encoded host", "https://lumiku.com%60.evil.com"],
    ["an underscore in the host", "https://lumiku.com_.evil.com"],
    ["an invalid port", "https://app.lumiku.com:99999"]
  ]
  for (const [name, entry] of bad) {
    it(`rejects ${name} (${entry}) with one problem naming CORS_ORIGIN`, () => {
      const problems = problemsOf({ CORS_ORIGIN: `https://app.lumiku.com,${entry}` })
      expect(problems).toHaveLength(1)
      expect(problems[0]).toMatch(/^CORS_ORIGIN: entry /)
      expect(problems[0]).toContain(JSON.stringify(entry))
    })
  }

  it("lists one problem per bad entry, next to other variables' problems", () => {
    const problems = problemsOf({ CORS_ORIGIN: "*,https://*.,https://ok.lumiku.com,lumiku.com", PORT: "eighty" })
    expect(problems.filter((p) => p.startsWith("CORS_ORIGIN: "))).toHaveLength(3)
    expect(problems.some((p) => p.startsWith("PORT"))).toBe(true)
  })

  it("rejects a bad depth, a wildcard method and an invalid header name, naming each variable", () => {
    const problems = problemsOf({ CORS_WILDCARD_DEPTH: "deep", CORS_METHODS: "GET,*", CORS_HEADERS: "X-Ok,Bad Header" })
    expect(problems).toHaveLength(3)
    expect(problems[0]).toMatch(/^CORS_WILDCARD_DEPTH: /)
    expect(problems[1]).toMatch(/^CORS_METHODS: method "\*" is not allowed/)
    expect(problems[2]).toMatch(/^CORS_HEADERS: "Bad Header" is not a valid header name/)
  })

  it("in production, rejects plain-http origins other than the loopback", () => {
    const production = productionEnv
    const problems = problemsOf({ ...production, CORS_ORIGIN: "https://app.lumiku.com,http://*.lumiku.com,http://localhost:5173" })
    expect(problems).toEqual([expect.stringMatching(/^CORS_ORIGIN entry "http:\/\/\*\.lumiku\.com" uses http:\/\//)])
  })
})

interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

const send = (url: string, method: string, headers: Record<string, string>): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end()
  })

const ALLOW_HEADERS = [
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-allow-methods",
  "access-control-allow-headers"
]
const expectDenied = (answer: Answer) => {
  for (const name of ALLOW_HEADERS) expect(answer.headers[name], name).toBeUndefined()
  expect(answer.headers["access-control-expose-headers"]).toBeUndefined()
  expect(answer.headers["vary"]).toMatch(/\bOrigin\b/)
}
const expectAllowed = (answer: Answer, origin: string) => {
  expect(answer.headers["access-control-allow-origin"]).toBe(origin)
  expect(answer.headers["access-control-allow-credentials"]).toBe("true")
  expect(answer.headers["vary"]).toMatch(/\bOrigin\b/)
}

describe("CORS over HTTP (the real app, in process)", () => {
  let app: InProcessApp
  let deepApp: InProcessApp
  let submissions = 0
  const ALLOWED = "https://app.lumiku.com"
  const DENIED = "https://evil-lumiku.com"

  beforeAll(async () => {
    const extraRoutes = HttpApiBuilder.Router.use((router) =>
      Effect.all([
        router.post("/__cors/submit", Effect.sync(() => {
          submissions++
          return HttpServerResponse.unsafeJson({ accepted: true })
        })),
        router.get("/__cors/defect", Effect.die(new Error("on purpose")))
      ])
    )
    app = await startApp(testEnv({ ROLE: "api", CORS_ORIGIN: "https://lumiku.com,https://*.lumiku.com" }), { extraRoutes })
    deepApp = await startApp(testEnv({ ROLE: "api", CORS_ORIGIN: "https://*.lumiku.com", CORS_WILDCARD_DEPTH: "any" }))
  })
  afterAll(async () => {
    await app?.close()
    await deepApp?.close()
  })

  it("an allowed simple GET echoes the origin with credentials, Vary and the exposed headers", async () => {
    const answer = await send(app.url("/health/liveness"), "GET", { origin: ALLOWED })
    expect(answer.status).toBe(200)
    expectAllowed(answer, ALLOWED)
    const exposed = String(answer.headers["access-control-expose-headers"]).split(",").map((s) => s.trim())
    expect(exposed).toEqual(expect.arrayContaining([...EXPOSED_HEADERS]))
    expect(exposed).toEqual(expect.arrayContaining(["X-Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "X-Total-Count"]))
    expect(answer.headers["access-control-max-age"]).toBeUndefined()
  })

  it("a denied GET is answered without Access-Control-* headers, with Vary: Origin", async () => {
    for (const origin of [DENIED, "null", "https://lumiku.com.evil.com", "https://app.lumiku.com:8443", "http://app.lumiku.com", "HTTPS://APP.LUMIKU.COM", `${ALLOWED},https://evil.com`, ""]) {
      const answer = await send(app.url("/health/liveness"), "GET", { origin })
      expect(answer.status, origin).toBe(200)
      expectDenied(answer)
    }
  })

  it("a request without Origin still carries Vary: Origin", async () => {
    const answer = await send(app.url("/health/liveness"), "GET", {})
    expectDenied(answer)
  })

  it("an allowed preflight answers 204 with the configured methods and headers and a max age", async () => {
    const answer = await send(app.url("/api/auth/login"), "OPTIONS", {
      origin: ALLOWED,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, authorization"
    })
    expect(answer.status).toBe(204)
    expect(answer.body).toBe("")
    expectAllowed(answer, ALLOWED)
    expect(answer.headers["access-control-allow-methods"]).toBe("GET, POST, PUT, PATCH, DELETE, OPTIONS")
    expect(answer.headers["access-control-allow-headers"]).toBe(DEFAULT_HEADERS.join(", "))
    expect(answer.headers["access-control-max-age"]).toBe("86400")
  })

  it("a preflight never reflects a requested header that is not configured", async () => {
    const answer = await send(app.url("/__cors/submit"), "OPTIONS", {
      origin: ALLOWED,
      "access-control-request-method": "DELETE",
      "access-control-request-headers": "x-evil-header, content-type"
    })
    expect(answer.status).toBe(204)
    expect(answer.headers["access-control-allow-headers"]).toBe(DEFAULT_HEADERS.join(", "))
    expect(String(answer.headers["access-control-allow-headers"]).toLowerCase()).not.toContain("x-evil-header")
  })

  it("a preflight from a denied origin answers 204 without Access-Control-Allow-* headers", async () => {
    const answer = await send(app.url("/__cors/submit"), "OPTIONS", {
      origin: DENIED,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type"
    })
    expect(answer.status).toBe(204)
    expectDenied(answer)
    expect(answer.headers["access-control-max-age"]).toBeUndefined()
  })

  it("a 404, a 413 and a 500 from an allowed origin carry ACAO and Vary", async () => {
    const notFound = await send(app.url("/no/such/route"), "GET", { origin: ALLOWED })
    expect(notFound.status).toBe(404)
    expect(JSON.parse(notFound.body)).toMatchObject({ success: false, code: "NOT_FOUND" })
    expectAllowed(notFound, ALLOWED)

    const tooLarge = await send(app.url("/__cors/submit"), "POST", { origin: ALLOWED, "content-length": "999999999" })
    expect(tooLarge.status).toBe(413)
    expectAllowed(tooLarge, ALLOWED)

    const defect = await send(app.url("/__cors/defect"), "GET", { origin: ALLOWED })
    expect(defect.status).toBe(500)
    expectAllowed(defect, ALLOWED)

    const deniedNotFound = await send(app.url("/no/such/route"), "GET", { origin: DENIED })
    expect(deniedNotFound.status).toBe(404)
    expectDenied(deniedNotFound)
  })

  it("a plain OPTIONS without Access-Control-Request-Method is not a preflight", async () => {
    const answer = await send(app.url("/no/such/route"), "OPTIONS", { origin: ALLOWED })
    expect(answer.status).toBe(404)
    expectAllowed(answer, ALLOWED)
    expect(answer.headers["access-control-allow-methods"]).toBeUndefined()
  })

  it("an unauthenticated POST from a denied origin is refused 403 before its handler; with a bearer token or no Origin it runs", async () => {
    const before = submissions
    const refused = await send(app.url("/__cors/submit"), "POST", { origin: DENIED, "content-type": "text/plain" })
    expect(refused.status).toBe(403)
    expect(JSON.parse(refused.body)).toMatchObject({ success: false, code: "FORBIDDEN" })
    expectDenied(refused)
    expect(submissions).toBe(before)

    const bearer = await send(app.url("/__cors/submit"), "POST", { origin: DENIED, "content-type": "text/plain", authorization: "Bearer x" })
    expect(bearer.status).toBe(200)
    expectDenied(bearer)
    const serverToServer = await send(app.url("/__cors/submit"), "POST", { "content-type": "text/plain" })
    expect(serverToServer.status).toBe(200)
    const allowed = await send(app.url("/__cors/submit"), "POST", { origin: ALLOWED, "content-type": "text/plain" })
    expect(allowed.status).toBe(200)
    expect(submissions).toBe(before + 3)
  })

  it("one-label mode denies nested subdomains; any-depth mode allows them but never the apex", async () => {
    expectDenied(await send(app.url("/health/liveness"), "GET", { origin: "https://a.b.lumiku.com" }))
    expectAllowed(await send(app.url("/health/liveness"), "GET", { origin: "https://lumiku.com" }), "https://lumiku.com")

    const nested = "https://a.b.lumiku.com"
    expectAllowed(await send(deepApp.url("/health/liveness"), "GET", { origin: nested }), nested)
    const preflight = await send(deepApp.url("/api/credits/balance"), "OPTIONS", { origin: nested, "access-control-request-method": "GET" })
    expect(preflight.status).toBe(204)
    expectAllowed(preflight, nested)
    expectDenied(await send(deepApp.url("/health/liveness"), "GET", { origin: "https://lumiku.com" }))
    expectDenied(await send(deepApp.url("/health/liveness"), "GET", { origin: "https://a.b.lumiku.com.evil.com" }))
  })
})
