import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { Auth } from "../../services/Auth.js"
import { CurrentUser } from "../../services/CurrentUser.js"
import { Unauthorized } from "../ApiError.js"
import { bearerToken } from "../bearer.js"

/** Requires a valid access token and provides the caller as CurrentUser (shown in OpenAPI as bearer auth). */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("app/Authentication", {
  failure: Unauthorized,
  provides: CurrentUser,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.map(Auth, (auth) =>
    Authentication.of({
      bearer: (token) =>
        bearerToken(token).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new Unauthorized({ message: "Sign in first: this needs an Authorization: Bearer token" })),
            onSome: auth.authenticate
          })),
          Effect.tap((user) => Effect.annotateCurrentSpan("userId", user.id))
        )
    }))
)
