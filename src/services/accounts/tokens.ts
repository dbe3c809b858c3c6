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

/** Access tokens: HS256 pinned on both sides (jose), naming the user and their server-side session. */
export const makeTokens = (secret: Redacted.Redacted<string>, ttl: Duration.Duration) => {
  const key = new TextEncoder().encode(Redacted.value(secret))
  const ttlSeconds = Math.max(1, Math.floor(Duration.toSeconds(ttl)))
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
    verify: (token: string): Effect.Effect<AccessClaims, InvalidToken> =>
      Effect.tryPromise({
        try: () => jwtVerify(token, key, { algorithms: [ALGORITHM], issuer: ISSUER }),
        catch: (cause) => new InvalidToken({ cause })
      }).pipe(
        Effect.flatMap(({ payload }) =>
          typeof payload.sub === "string" && typeof payload["sid"] === "string"
            ? Effect.succeed({ userId: payload.sub, sessionId: payload["sid"] })
            : Effect.fail(new InvalidToken({}))
        )
      )
  }
}
