import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Effect, Layer, Option, Schema } from "effect"
import { Accounts } from "../../services/accounts/Accounts.js"
import { CurrentUser, type CurrentUserShape } from "../../services/accounts/CurrentUser.js"
import { SessionMirror } from "../../services/accounts/SessionMirror.js"
import type { AccessClaims } from "../../services/accounts/tokens.js"
import type { RateLimitDecision } from "../../services/platform/RateLimiter.js"
import { RateLimited, ServiceUnavailable, Unauthorized } from "../platform/ApiError.js"
import { bearerToken } from "../platform/bearer.js"
import { type PolicyName, RateLimitGuard } from "../platform/RateLimitGuard.js"

/** Requires a valid access token and provides the caller as CurrentUser (shown in OpenAPI as bearer auth). */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("app/Authentication", {
  failure: Schema.Union(Unauthorized, RateLimited, ServiceUnavailable),
  provides: CurrentUser,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/** Who the caller is, and the general per-user limit's decision for this request (not yet answered). */
export interface Authenticated {
  readonly user: CurrentUserShape
  readonly decision: RateLimitDecision
  /** The route limit asked for with `also`, decided when the general limit allowed the request. */
  readonly also?: RateLimitDecision | undefined
}

export const missingToken = new Unauthorized({ message: "Sign in first: this needs an Authorization: Bearer token" })

/**
 * The authentication of a bearer token, with the general per-user API limit (100/min by default,
 * limited in this process when Redis is down). A session mirrored in Redis is checked and counted in
 * one round trip; otherwise Postgres decides (and a live session is mirrored for the next request),
 * then the limiter counts. The decision is returned, not answered: the middleware below answers it
 * through the response, the lean balance route (http/credits/balanceRoute.ts) writes it itself.
 */
export const makeAuthenticate = Effect.gen(function*() {
  const accounts = yield* Accounts
  const guard = yield* RateLimitGuard
  const mirror = yield* SessionMirror
  const general = guard.policy("general")

  const fromPostgres = (claims: AccessClaims, limitKey: string, also: PolicyName | undefined, generation?: string) =>
    accounts.liveSession(claims).pipe(
      Effect.tap((session) => (generation === undefined ? Effect.void : mirror.fill(generation, session))),
      Effect.flatMap((session) =>
        Effect.flatMap(guard.decide("general", limitKey), (decision): Effect.Effect<Authenticated, ServiceUnavailable> =>
          also === undefined || !decision.allowed
            ? Effect.succeed({ user: session.user, decision })
            : Effect.map(guard.decide(also, limitKey), (second) => ({ user: session.user, decision, also: second }))
        )
      )
    )

  /**
   * `also`: a route's own per-user limit, decided after the general one allowed the request (in the
   * same Redis round trip when the session is mirrored), as the route's handler would decide it next.
   */
  return (token: string, also?: PolicyName): Effect.Effect<Authenticated, Unauthorized | ServiceUnavailable> =>
    Effect.flatMap(accounts.verifyToken(token), (claims) => {
      const limitKey = `user:${claims.userId}`
      const second = also === undefined ? undefined : { policy: guard.policy(also), limitKey }
      return Effect.flatMap(mirror.check(claims, general, limitKey, second), (found) => {
        switch (found._tag) {
          case "Hit":
            return Effect.succeed<Authenticated>({ user: found.user, decision: found.decision, also: found.also })
          case "Miss":
            return fromPostgres(claims, limitKey, also, found.generation)
          case "Unusable":
            return fromPostgres(claims, limitKey, also)
        }
      })
    })
})

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const guard = yield* RateLimitGuard
    const authenticate = yield* makeAuthenticate
    const missing = Effect.fail(missingToken)
    const answer = ({ decision, user }: Authenticated) => Effect.as(guard.apply(decision, "general"), user)
    return Authentication.of({
      bearer: (token) =>
        Effect.flatMap(bearerToken(token), Option.match({ onNone: () => missing, onSome: (t) => Effect.flatMap(authenticate(t), answer) }))
    })
  })
)
