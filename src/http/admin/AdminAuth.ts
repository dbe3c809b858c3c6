import { createHash, timingSafeEqual } from "node:crypto"
import { HttpApiMiddleware, HttpApiSecurity, HttpServerRequest } from "@effect/platform"
import { Effect, Layer, Option, Redacted } from "effect"
import { AppConfig } from "../../services/AppConfig.js"
import { Unauthorized } from "../ApiError.js"

/** Guards the admin API: an `Authorization: Bearer` credential that proves an administrator. */
export class AdminAuth extends HttpApiMiddleware.Tag<AdminAuth>()("app/AdminAuth", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/** Whether a bearer credential proves an administrator. */
type AdminCredentialCheck = (token: Redacted.Redacted<string>) => Effect.Effect<boolean>

const sha256 = (value: string) => createHash("sha256").update(value, "utf8").digest()

/** Compares digests, so neither the content nor the length of the token shows in the timing. */
const adminTokenCheck = (expected: Redacted.Redacted<string>): AdminCredentialCheck => {
  const expectedDigest = sha256(Redacted.value(expected))
  return (token) => Effect.sync(() => timingSafeEqual(sha256(Redacted.value(token)), expectedDigest))
}

// The platform takes the token as whatever follows the first 7 characters; the scheme is checked here.
const BEARER_SCHEME = /^Bearer /i

export const AdminAuthLive = Layer.effect(
  AdminAuth,
  Effect.gen(function*() {
    const config = yield* AppConfig
    // Once accounts exist, an admin user's JWT is one more check in this list.
    const checks: ReadonlyArray<AdminCredentialCheck> = Option.toArray(Option.map(config.admin.token, adminTokenCheck))

    return AdminAuth.of({
      bearer: Effect.fn("AdminAuth.bearer")(function*(token) {
        if (checks.length === 0) {
          return yield* new Unauthorized({ message: "The admin API is not configured (ADMIN_TOKEN is not set)" })
        }
        const request = yield* HttpServerRequest.HttpServerRequest
        const header = request.headers["authorization"]
        if (header === undefined || !BEARER_SCHEME.test(header) || Redacted.value(token) === "") {
          return yield* new Unauthorized({ message: "The admin API requires an Authorization: Bearer token" })
        }
        if (!(yield* Effect.exists(checks, (check) => check(token)))) {
          yield* Effect.logWarning("admin API call with an invalid bearer token")
          return yield* new Unauthorized({ message: "The bearer token is not valid for the admin API" })
        }
      })
    })
  })
)
