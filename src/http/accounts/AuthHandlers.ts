import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Auth } from "../../services/accounts/Auth.js"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { Api } from "../Api.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"

export const AuthHandlers = HttpApiBuilder.group(Api, "auth", (handlers) =>
  Effect.gen(function*() {
    const auth = yield* Auth
    const guard = yield* RateLimitGuard

    return handlers
      .handle("register", ({ payload }) =>
        Effect.gen(function*() {
          yield* guard.enforce("register", yield* guard.clientAddress)
          const session = yield* auth.register(payload)
          return { success: true, data: session } as const
        }))
      .handle("login", ({ payload }) =>
        Effect.gen(function*() {
          const address = yield* guard.clientAddress
          yield* guard.enforce("login", address)
          const session = yield* auth.login(payload, address)
          return { success: true, data: session } as const
        }))
      .handle("refresh", ({ payload }) =>
        Effect.map(auth.refresh(payload.refreshToken), (data) => ({ success: true, data }) as const))
      .handle("logout", () =>
        Effect.flatMap(CurrentUser, (user) => auth.logout(user)).pipe(Effect.as({ success: true } as const)))
      .handle("profile", () => Effect.flatMap(CurrentUser, (user) => auth.profile(user)))
      .handle("updateProfile", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const result = yield* auth.updateProfile(user, payload, yield* guard.clientAddress)
          return { success: true, data: result, ...result } as const
        }))
  }))
