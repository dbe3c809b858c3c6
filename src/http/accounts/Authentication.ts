import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Effect, Layer, Option, Schema } from "effect"
import { Accounts } from "../../services/accounts/Accounts.js"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { SessionMirror } from "../../services/accounts/SessionMirror.js"
import type { AccessClaims } from "../../services/accounts/tokens.js"
import { RateLimited, ServiceUnavailable, Unauthorized } from "../platform/ApiError.js"
import { bearerToken } from "../platform/bearer.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"

/** Requires a valid access token and provides the caller as CurrentUser (shown in OpenAPI as bearer auth). */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("app/Authentication", {
  failure: Schema.Union(Unauthorized, RateLimited, ServiceUnavailable),
  provides: CurrentUser,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * Also applies the general per-user API limit (100/min by default), limited in this process when
 * Redis is down. A session mirrored in Redis is checked and counted in one round trip; otherwise
 * Postgres decides (and a live session is mirrored for the next request), then the limiter counts.
 */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const accounts = yield* Accounts
    const guard = yield* RateLimitGuard
    const mirror = yield* SessionMirror
    const general = guard.policy("general")
    const missing = Effect.fail(new Unauthorized({ message: "Sign in first: this needs an Authorization: Bearer token" }))

    const fromPostgres = (claims: AccessClaims, limitKey: string, generation?: string) =>
      accounts.liveSession(claims).pipe(
        Effect.tap((session) => (generation === undefined ? Effect.void : mirror.fill(generation, session))),
        Effect.tap(() => guard.enforce("general", limitKey)),
        Effect.map((session) => session.user)
      )

    const authenticate = (token: string) =>
      Effect.flatMap(accounts.verifyToken(token), (claims) => {
        const limitKey = `user:${claims.userId}`
        return Effect.flatMap(mirror.check(claims, general, limitKey), (found) => {
          switch (found._tag) {
            case "Hit":
              return Effect.as(guard.apply(found.decision, "general"), found.user)
            case "Miss":
              return fromPostgres(claims, limitKey, found.generation)
            case "Unusable":
              return fromPostgres(claims, limitKey)
          }
        })
      })

    return Authentication.of({
      bearer: (token) => Effect.flatMap(bearerToken(token), Option.match({ onNone: () => missing, onSome: authenticate }))
    })
  })
)
