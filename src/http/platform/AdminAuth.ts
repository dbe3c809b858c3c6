import { timingSafeEqual } from "node:crypto"
import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Effect, Layer, Option, Redacted } from "effect"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { sha256 } from "../../services/platform/digest.js"
import { Accounts } from "../../services/accounts/Accounts.js"
import { Unauthorized } from "./ApiError.js"
import { bearerToken } from "./bearer.js"

/** Guards the admin API: an `Authorization: Bearer` credential that proves an administrator. */
export class AdminAuth extends HttpApiMiddleware.Tag<AdminAuth>()("app/AdminAuth", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/** Whether a bearer credential proves an administrator. */
type AdminCredentialCheck = (token: Redacted.Redacted<string>) => Effect.Effect<boolean>

/** Compares digests, so neither the content nor the length of the token shows in the timing. */
const adminTokenCheck = (expected: Redacted.Redacted<string>): AdminCredentialCheck => {
  const expectedDigest = sha256(Redacted.value(expected))
  return (token) => Effect.sync(() => timingSafeEqual(sha256(Redacted.value(token)), expectedDigest))
}

/** An administrator's own session token. */
const adminUserCheck = (accounts: Accounts): AdminCredentialCheck => (token) =>
  accounts.authenticate(Redacted.value(token)).pipe(Effect.map((user) => user.role === "admin"), Effect.orElseSucceed(() => false))

/**
 * Decides whether a bearer credential proves an administrator: ADMIN_TOKEN (for operators and scripts) when
 * set, and always an admin user's session token. The admin API's guard and the detailed health report
 * (which shows its private fields only to an administrator) both ask it.
 */
export class AdminCredentials extends Effect.Service<AdminCredentials>()("app/AdminCredentials", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const accounts = yield* Accounts
    const checks: ReadonlyArray<AdminCredentialCheck> = [
      ...Option.toArray(Option.map(config.admin.token, adminTokenCheck)),
      adminUserCheck(accounts)
    ]
    const isAdmin = (token: Redacted.Redacted<string>): Effect.Effect<boolean> =>
      Effect.exists(checks, (check) => check(token))
    return { isAdmin }
  })
}) {}

export const AdminAuthLive = Layer.effect(
  AdminAuth,
  Effect.gen(function*() {
    const credentials = yield* AdminCredentials

    return AdminAuth.of({
      bearer: Effect.fn("AdminAuth.bearer")(function*(token) {
        if (Option.isNone(yield* bearerToken(token))) {
          return yield* new Unauthorized({ message: "The admin API requires an Authorization: Bearer token" })
        }
        if (!(yield* credentials.isAdmin(token))) {
          yield* Effect.logWarning("admin API call with an invalid bearer token")
          return yield* new Unauthorized({ message: "The bearer token is not valid for the admin API" })
        }
      })
    })
  })
)
