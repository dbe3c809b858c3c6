import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Effect, Layer, Option, Schema } from "effect"
import { Accounts } from "../../services/accounts/Accounts.js"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { RateLimited, ServiceUnavailable, Unauthorized } from "../platform/ApiError.js"
import { bearerToken } from "../platform/bearer.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"

/** Requires a valid access token and provides the caller as CurrentUser (shown in OpenAPI as bearer auth). */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("app/Authentication", {
  failure: Schema.Union(Unauthorized, RateLimited, ServiceUnavailable),
  provides: CurrentUser,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/** Also applies the general per-user API limit (100/min by default), limited in this process when Redis is down. */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const accounts = yield* Accounts
    const guard = yield* RateLimitGuard
    return Authentication.of({
      bearer: (token) =>
        bearerToken(token).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new Unauthorized({ message: "Sign in first: this needs an Authorization: Bearer token" })),
            onSome: accounts.authenticate
          })),
          Effect.tap((user) => guard.enforce("general", `user:${user.id}`)),
          Effect.tap((user) => Effect.annotateCurrentSpan("userId", user.id))
        )
    })
  })
)
