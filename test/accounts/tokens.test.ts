import { Duration, Effect, Exit, Redacted } from "effect"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import { makeTokens } from "../../src/services/accounts/tokens.js"

const secret = Redacted.make("tokens-test-secret-0123456789abcdef")
const claims = { userId: "u-1", sessionId: "s-1" }

describe("access tokens", () => {
  it("a token verified once verifies again without the async HMAC (synchronously), with the same claims", async () => {
    const tokens = makeTokens(secret, Duration.minutes(5))
    const token = await Effect.runPromise(tokens.sign(claims))
    // The first verification goes through jose (a promise): runSync cannot finish it.
    expect(Exit.isFailure(Effect.runSyncExit(makeTokens(secret, Duration.minutes(5)).verify(token)))).toBe(true)
    expect(await Effect.runPromise(tokens.verify(token))).toEqual(claims)
    expect(Effect.runSync(tokens.verify(token))).toEqual(claims)
  })

  it("a remembered token still expires at its exp", async () => {
    const tokens = makeTokens(secret, Duration.seconds(1))
    const token = await Effect.runPromise(tokens.sign(claims))
    expect(await Effect.runPromise(tokens.verify(token))).toEqual(claims)
    await new Promise((r) => setTimeout(r, 2_100))
    const exit = Effect.runSyncExit(tokens.verify(token))
    expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("InvalidToken")
  })

  it("a tampered copy of a remembered token, or one signed with another key, is refused", async () => {
    const tokens = makeTokens(secret, Duration.minutes(5))
    const token = await Effect.runPromise(tokens.sign(claims))
    await Effect.runPromise(tokens.verify(token))
    const [header, , signature] = token.split(".")
    const forgedPayload = Buffer.from(JSON.stringify({ sid: "s-2", sub: "u-2", iss: "lumiku", exp: Math.floor(Date.now() / 1000) + 60 })).toString("base64url")
    const forged = `${header}.${forgedPayload}.${signature}`
    expect(Exit.isFailure(await Effect.runPromiseExit(tokens.verify(forged)))).toBe(true)
    const other = await Effect.runPromise(makeTokens(Redacted.make("another-secret-0123456789abcdef!!"), Duration.minutes(5)).sign(claims))
    expect(Exit.isFailure(await Effect.runPromiseExit(tokens.verify(other)))).toBe(true)
  })

  it("a validly signed token without exp is accepted by jose but never remembered", async () => {
    const tokens = makeTokens(secret, Duration.minutes(5))
    const key = new TextEncoder().encode(Redacted.value(secret))
    const token = await new SignJWT({ sid: "s-1" }).setProtectedHeader({ alg: "HS256" }).setSubject("u-1").setIssuer("lumiku").sign(key)
    expect(await Effect.runPromise(tokens.verify(token))).toEqual(claims)
    expect(Exit.isFailure(Effect.runSyncExit(tokens.verify(token)))).toBe(true)
  })
})
