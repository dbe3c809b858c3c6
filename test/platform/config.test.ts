import { Duration, Effect, Either, Option, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { makeClientAddressResolver } from "../../src/services/platform/clientAddress.js"
import { checkJwtSecret, shannonEntropy } from "../../src/services/platform/productionRules.js"
import { productionEnv } from "../support/env.js"
import { runToExit } from "../support/spawnServer.js"

const load = (env: Record<string, string>) => Effect.runSync(Effect.either(appConfigFrom(env)))
const problemsOf = (env: Record<string, string>) => {
  const result = load(env)
  if (Either.isRight(result)) throw new Error("expected the configuration to be rejected")
  return result.left
}

const goodProduction = productionEnv

describe("configuration", () => {
  it("needs no environment at all in development, with defaults that work on this machine", () => {
    const config = Either.getOrThrow(load({}))
    expect(config.env).toBe("development")
    expect(config.http.port).toBe(3000)
    expect(Redacted.value(config.database.url)).toBe("postgres://postgres@127.0.0.1:5432/lumiku")
    expect(config.redis).toMatchObject({ host: "127.0.0.1", port: 6379 })
    expect(config.storage.dir).toMatch(/\/data\/storage$/)
    expect(config.auth.jwtSecretGenerated).toBe(true)
    expect(Redacted.value(config.auth.jwtSecret).length).toBeGreaterThanOrEqual(32)
    expect(config.log.format).toBe("pretty")
    expect(Duration.toMillis(config.shutdown.drainDelay)).toBe(5000)
    expect(Duration.toMillis(config.shutdown.timeout)).toBe(30000)
  })

  it("accepts a good production configuration", () => {
    const config = Either.getOrThrow(load(goodProduction))
    expect(config.log.format).toBe("json")
    expect(config.database.createIfMissing).toBe(false)
    expect(config.secretValues).toEqual(expect.arrayContaining([goodProduction["JWT_SECRET"], goodProduction["REDIS_PASSWORD"], goodProduction["DUITKU_API_KEY"]]))
  })

  it("reads durations as milliseconds or as Effect durations", () => {
    const config = Either.getOrThrow(load({ SHUTDOWN_DRAIN_DELAY: "5000", SHUTDOWN_TIMEOUT: "45 seconds" }))
    expect(Duration.toMillis(config.shutdown.drainDelay)).toBe(5000)
    expect(Duration.toMillis(config.shutdown.timeout)).toBe(45000)
    expect(problemsOf({ SHUTDOWN_TIMEOUT: "soon" }).problems).toEqual([expect.stringContaining("SHUTDOWN_TIMEOUT")])
  })

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ["a short JWT secret", { JWT_SECRET: "aB3$dE5^gH7*jK9(" }, /JWT_SECRET must be at least 32/],
    ["a low-entropy JWT secret", { JWT_SECRET: "abababababababababababababababababab" }, /JWT_SECRET is too predictable/],
    ["a JWT secret with a placeholder", { JWT_SECRET: "Xq9!mZ2@changeme#Lp4$Wn7%Rt8^Ys1&Kd3" }, /JWT_SECRET contains a known placeholder \("changeme"\)/],
    ["a missing JWT secret", { JWT_SECRET: "" }, /JWT_SECRET is required in production/],
    ["a sandbox Duitku API key", { DUITKU_API_KEY: "sandbox-f3a9c0b7e2d54c1a8b6e9f0" }, /DUITKU_API_KEY looks like a test or placeholder credential/],
    ["a short Duitku API key", { DUITKU_API_KEY: "f3a9c0b7e2" }, /DUITKU_API_KEY must be at least 20/],
    ["a demo merchant code", { DUITKU_MERCHANT_CODE: "DEMO01" }, /DUITKU_MERCHANT_CODE looks like a test/],
    ["an http callback URL", { DUITKU_CALLBACK_URL: "http://api.lumiku.com/cb" }, /DUITKU_CALLBACK_URL must be an https/],
    ["an http return URL", { DUITKU_RETURN_URL: "http://app.lumiku.com/credits" }, /DUITKU_RETURN_URL must be an https/],
    ["an empty CORS list", { CORS_ORIGIN: " , " }, /CORS_ORIGIN must list at least one origin/],
    ["a localhost-only CORS list", { CORS_ORIGIN: "http://localhost:5173,http://127.0.0.1:3000" }, /CORS_ORIGIN lists only localhost/],
    ["Redis without a password", { REDIS_PASSWORD: "" }, /REDIS_PASSWORD is required in production/]
  ]
  for (const [name, override, pattern] of cases) {
    it(`rejects ${name} in production, naming the variable and never its value`, () => {
      const error = problemsOf({ ...goodProduction, ...override })
      expect(error.message).toMatch(pattern)
      for (const value of Object.values(override)) {
        if (value.trim().length >= 4) expect(error.message).not.toContain(value)
      }
    })
  }

  it("lists every problem at once, parse errors and production rules together", () => {
    const error = problemsOf({
      NODE_ENV: "production",
      PORT: "eighty",
      LOG_LEVEL: "loud",
      JWT_SECRET: "secret",
      DUITKU_API_KEY: "test",
      DUITKU_CALLBACK_URL: "http://x.example/cb",
      CORS_ORIGIN: "http://localhost:5173"
    })
    for (const name of ["PORT", "LOG_LEVEL", "JWT_SECRET", "DUITKU_MERCHANT_CODE", "DUITKU_API_KEY", "DUITKU_CALLBACK_URL", "DUITKU_RETURN_URL", "CORS_ORIGIN", "REDIS_PASSWORD"]) {
      expect(error.message).toContain(name)
    }
    expect(error.problems.length).toBeGreaterThanOrEqual(10)
  })

  it("starts each problem with the name of its variable, once, whatever the kind of variable", () => {
    const error = problemsOf({
      PORT: "eighty",
      ROLE: "boss",
      LOG_LEVEL: "loud",
      SHUTDOWN_TIMEOUT: "soon",
      FFMPEG_BUNDLED: "maybe",
      CORS_METHODS: "*",
      RATE_LIMIT_AI: "5",
      HEALTH_RATE_LIMIT_PER_MINUTE: "0",
      MEMORY_LIMIT_BYTES: "0",
      JOB_CONCURRENCY: "video-mixer"
    })
    expect(error.problems.map((p) => p.slice(0, p.indexOf(": "))).sort()).toEqual([
      "CORS_METHODS", "FFMPEG_BUNDLED", "HEALTH_RATE_LIMIT_PER_MINUTE", "JOB_CONCURRENCY", "LOG_LEVEL",
      "MEMORY_LIMIT_BYTES", "PORT", "RATE_LIMIT_AI", "ROLE", "SHUTDOWN_TIMEOUT"
    ])
  })

  it("development accepts weak values production refuses", () => {
    const config = Either.getOrThrow(load({ JWT_SECRET: "dev", CORS_ORIGIN: "http://localhost:5173" }))
    expect(Option.isNone(config.redis.password)).toBe(true)
  })

  it("measures entropy in bits per character", () => {
    expect(shannonEntropy("aaaa")).toBe(0)
    expect(shannonEntropy("abcd")).toBe(2)
    expect(checkJwtSecret("JWT_SECRET", goodProduction["JWT_SECRET"]!)).toEqual([])
  })

  it("accepts TRUSTED_PROXIES addresses and CIDRs, IPv4 and IPv6", () => {
    const config = Either.getOrThrow(load({ TRUSTED_PROXIES: "10.0.0.1, 10.0.0.0/8,192.168.1.0/24, ::1, fd00::/8" }))
    expect(config.http.trustedProxies).toEqual(["10.0.0.1", "10.0.0.0/8", "192.168.1.0/24", "::1", "fd00::/8"])
    const resolver = makeClientAddressResolver(config.http.trustedProxies)
    expect(resolver.resolve("10.1.2.3", "203.0.113.9")).toBe("203.0.113.9")
    expect(resolver.resolve("203.0.113.50", "198.51.100.1")).toBe("203.0.113.50")
  })

  it("rejects every malformed TRUSTED_PROXIES entry at once, naming the variable and each entry", () => {
    const bad = ["10.0.0.1/", "/abc", "10.0.0.0/33", "fd00::/129", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0.0/0x8", "proxy.internal", "10.0.0.256"]
    const error = problemsOf({ TRUSTED_PROXIES: ["10.0.0.2", ...bad].join(","), PORT: "eighty" })
    expect(error.problems.filter((p) => p.includes("TRUSTED_PROXIES"))).toHaveLength(bad.length)
    for (const entry of bad) expect(error.message).toContain(JSON.stringify(entry.trim()))
    expect(error.message).not.toContain("\"10.0.0.2\"")
    expect(error.message).toContain("PORT")
  })

  it("a trailing slash no longer trusts every address", () => {
    // before: "10.0.0.1/" became 10.0.0.1/0, so any peer could set X-Forwarded-For
    expect(Either.isLeft(load({ TRUSTED_PROXIES: "10.0.0.1/" }))).toBe(true)
    expect(() => makeClientAddressResolver(["10.0.0.1/"])).toThrow(/TRUSTED_PROXIES/)
  })

  it("a bad TRUSTED_PROXIES exits 1 before listening", async () => {
    const { code, output } = await runToExit({ TRUSTED_PROXIES: "/abc" })
    expect(code).toBe(1)
    expect(output).toContain("TRUSTED_PROXIES")
    expect(output).toContain("Invalid configuration")
    expect(output).not.toContain("listening")
  }, 20_000)

  it("a bad configuration exits 1 before listening, with one message naming each variable and no secret value", async () => {
    const leakedSecret = "admin-password-12345678"
    const { code, elapsedMs, output } = await runToExit({
      NODE_ENV: "production",
      PORT: "3000",
      JWT_SECRET: leakedSecret,
      DUITKU_API_KEY: "sandbox-key-value-000"
    })
    expect(code).toBe(1)
    expect(elapsedMs).toBeLessThan(15_000)
    const lines = output.trim().split("\n")
    expect(lines).toHaveLength(1)
    const line = JSON.parse(lines[0]!) as { msg: string; problems: Array<string> }
    expect(line.msg).toContain("Invalid configuration")
    for (const name of ["JWT_SECRET", "DUITKU_API_KEY", "DUITKU_MERCHANT_CODE", "REDIS_PASSWORD", "CORS_ORIGIN"]) {
      expect(line.msg).toContain(name)
    }
    expect(output).not.toContain(leakedSecret)
    expect(output).not.toContain("sandbox-key-value-000")
    expect(output).not.toContain("listening")
  }, 20_000)
})
