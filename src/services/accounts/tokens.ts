import { Data, Duration, Effect, Redacted } from "effect"
import { jwtVerify, SignJWT } from "jose"

const ISSUER = "lumiku"
const ALGORITHM = "HS256"

export class InvalidToken extends Data.TaggedError("InvalidToken")<{ readonly cause?: unknown }> {
  override get message() {
    return "the token is invalid or expired"
  }
}

export interface AccessClaims {
  readonly userId: string
  readonly sessionId: string
}

/**
 * Verified tokens kept so a client's next requests skip the HMAC (jose verifies through WebCrypto:
 * an async thread-pool job per request, the largest share of the auth cost under load). Only a
 * token that passed verification enters, keyed by its exact text, and only until its own `exp`;
 * the oldest entries go first past the bound. Revocation is not cached here: the session is still
 * checked on every request.
 */
const VERIFIED_MAX = 10_000

interface Verified { readonly claims: AccessClaims; readonly expiresAtMs: number }

/** Access tokens: HS256 pinned on both sides (jose), naming the user and their server-side session. */
export const makeTokens = (secret: Redacted.Redacted<string>, ttl: Duration.Duration) => {
  const key = new TextEncoder().encode(Redacted.value(secret))
  const ttlSeconds = Math.max(1, Math.floor(Duration.toSeconds(ttl)))
  const verified = new Map<string, Verified>()

  const remember = (token: string, claims: AccessClaims, exp: number | undefined) => {
    // jose accepts a token without `exp`; ours always carry one, and only those are kept.
    if (typeof exp !== "number") return
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!)
    verified.set(token, { claims, expiresAtMs: exp * 1000 })
  }

  const verifySigned = (token: string): Effect.Effect<AccessClaims, InvalidToken> =>
    Effect.tryPromise({
      try: () => jwtVerify(token, key, { algorithms: [ALGORITHM], issuer: ISSUER }),
      catch: (cause) => new InvalidToken({ cause })
    }).pipe(
      Effect.flatMap(({ payload }) => {
        if (typeof payload.sub !== "string" || typeof payload["sid"] !== "string") return Effect.fail(new InvalidToken({}))
        const claims: AccessClaims = { userId: payload.sub, sessionId: payload["sid"] }
        remember(token, claims, payload.exp)
        return Effect.succeed(claims)
      })
    )

  return {
    sign: (claims: AccessClaims) =>
      Effect.promise(() =>
        new SignJWT({ sid: claims.sessionId })
          .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
          .setSubject(claims.userId)
          .setIssuer(ISSUER)
          .setIssuedAt()
          .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
          .sign(key)
      ),
    /** Synchronous for a token verified before and not yet expired (the same `exp <= now` rule as jose). */
    verify: (token: string): Effect.Effect<AccessClaims, InvalidToken> =>
      Effect.suspend(() => {
        const hit = verified.get(token)
        if (hit === undefined) return verifySigned(token)
        if (Date.now() < hit.expiresAtMs) return Effect.succeed(hit.claims)
        verified.delete(token)
        return Effect.fail(new InvalidToken({}))
      })
  }
}
