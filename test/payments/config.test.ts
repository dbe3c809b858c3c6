import { Effect, Either, Option } from "effect"
import { describe, expect, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { makeCallbackSourceCheck } from "../../src/services/payments/callbackSource.js"
import { callbackSignature, signatureMatches } from "../../src/services/payments/signature.js"
import { productionEnv, testEnv } from "../support/env.js"
import { spawnServer } from "../support/spawnServer.js"

const load = (env: Record<string, string>) => Effect.runPromise(Effect.either(appConfigFrom(env)))

describe("payments configuration", () => {
  it.each([
    ["a test merchant code", { DUITKU_MERCHANT_CODE: "TEST01" }, /DUITKU_MERCHANT_CODE looks like a test/],
    ["a sandbox API key", { DUITKU_API_KEY: "sandbox-f3a9c0b7e2d54c1a8b6e9f0" }, /DUITKU_API_KEY looks like a test/],
    ["a placeholder API key", { DUITKU_API_KEY: "your-api-key-goes-here-please" }, /DUITKU_API_KEY looks like a test/],
    ["a short API key", { DUITKU_API_KEY: "f3a9c0b7e2d5" }, /DUITKU_API_KEY must be at least 20/],
    ["no merchant code", { DUITKU_MERCHANT_CODE: "" }, /DUITKU_MERCHANT_CODE is required/],
    ["a plain-http callback URL", { DUITKU_CALLBACK_URL: "http://api.lumiku.com/api/payment/duitku/callback" }, /DUITKU_CALLBACK_URL must be an https/],
    ["the callback address check off", { DUITKU_CALLBACK_IP_CHECK: "false" }, /DUITKU_CALLBACK_IP_CHECK=false is not allowed/]
  ])("refuses %s in production", async (_name, change, problem) => {
    const result = await load({ ...productionEnv, ...change })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.message).toMatch(problem)
  })

  it("accepts the good production configuration, on Duitku's production API by default", async () => {
    const result = await load({ ...productionEnv })
    expect(Either.isRight(result)).toBe(true)
    if (Either.isRight(result)) {
      expect(result.right.duitku.environment).toBe("production")
      expect(result.right.duitku.baseUrl).toBe("https://passport.duitku.com")
    }
    const dev = await Effect.runPromise(appConfigFrom({}))
    expect(dev.duitku.environment).toBe("sandbox")
    expect(dev.duitku.baseUrl).toBe("https://sandbox.duitku.com")
    expect(dev.duitku.maxPending).toBe(5)
  })

  it("refuses a DUITKU_CALLBACK_IPS entry that is not an address", async () => {
    const result = await load({ DUITKU_CALLBACK_IPS: "182.23.85.8, duitku.com" })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.message).toMatch(/DUITKU_CALLBACK_IPS.*duitku\.com/)
  })

  it("stops a production process at startup on a plain-http callback URL (exit 1)", async () => {
    const env = testEnv({ ...productionEnv, DUITKU_CALLBACK_URL: "http://api.lumiku.com/cb" })
    await expect(spawnServer(env)).rejects.toThrow(/exited with 1[\s\S]*DUITKU_CALLBACK_URL/)
  })
})

describe("callback signature", () => {
  const expected = callbackSignature("D1", "150000", "LMK-1", "key")
  it("matches the right digest in either case, and refuses malformed ones without throwing", () => {
    expect(signatureMatches(expected, expected)).toBe(true)
    expect(signatureMatches(expected.toUpperCase(), expected)).toBe(true)
    for (const bad of ["", "00", expected.slice(1), `${expected}0`, "g".repeat(32), callbackSignature("D1", "150000.00", "LMK-1", "key")]) {
      expect(signatureMatches(bad, expected)).toBe(false)
    }
  })
  it("signs the amount exactly as received", () => {
    expect(callbackSignature("D1", "150000.00", "LMK-1", "key")).not.toBe(expected)
  })
})

describe("callback source", () => {
  const configFor = async (env: Record<string, string>) => Effect.runPromise(appConfigFrom(env))

  it("uses the environment's published list, or DUITKU_CALLBACK_IPS instead", async () => {
    const sandbox = makeCallbackSourceCheck(await configFor({}))
    expect(sandbox({ peer: "182.23.85.11", forwardedFor: undefined, forwardedProto: undefined })._tag).toBe("Allowed")
    expect(sandbox({ peer: "::ffff:182.23.85.12", forwardedFor: undefined, forwardedProto: undefined })._tag).toBe("Allowed")
    // A production address is not a sandbox one.
    expect(sandbox({ peer: "182.23.85.8", forwardedFor: undefined, forwardedProto: undefined })._tag).toBe("Refused")
    const replaced = makeCallbackSourceCheck(await configFor({ DUITKU_CALLBACK_IPS: "198.51.100.4" }))
    expect(replaced({ peer: "198.51.100.4", forwardedFor: undefined, forwardedProto: undefined })._tag).toBe("Allowed")
    expect(replaced({ peer: "182.23.85.11", forwardedFor: undefined, forwardedProto: undefined })._tag).toBe("Refused")
  })

  it("never believes X-Forwarded-For from an untrusted peer", async () => {
    const check = makeCallbackSourceCheck(await configFor({}))
    expect(check({ peer: "203.0.113.9", forwardedFor: "182.23.85.11", forwardedProto: undefined })._tag).toBe("Refused")
  })

  it("in production refuses a callback that reached the trusted proxy over plain http", async () => {
    const config = await configFor({ ...productionEnv, TRUSTED_PROXIES: "10.0.0.0/8" })
    expect(Option.isNone(config.duitku.callbackIps)).toBe(true)
    const check = makeCallbackSourceCheck(config)
    const via = (proto: string | undefined) => check({ peer: "10.1.2.3", forwardedFor: "182.23.85.8", forwardedProto: proto })
    expect(via("https")._tag).toBe("Allowed")
    expect(via("http")._tag).toBe("Refused")
    expect(via(undefined)._tag).toBe("Refused")
    expect(via("https, http")._tag).toBe("Refused")
  })
})
