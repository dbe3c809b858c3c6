import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Accounts } from "../../services/accounts/Accounts.js"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { Api } from "../Api.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"

export const AuthHandlers = HttpApiBuilder.group(Api, "auth", (handlers) =>
  Effect.gen(function*() {
    const accounts = yield* Accounts
    const guard = yield* RateLimitGuard

    return handlers
      .handle("register", ({ payload }) =>
        Effect.gen(function*() {
          yield* guard.enforce("register", yield* guard.clientAddress)
          const session = yield* accounts.register(payload)
          return { success: true, data: session } as const
        }))
      .handle("login", ({ payload }) =>
        Effect.gen(function*() {
          const address = yield* guard.clientAddress
          yield* guard.enforce("login", address)
          const session = yield* accounts.login(payload, address)
          return { success: true, data: session } as const
        }))
      .handle("refresh", ({ payload }) =>
        Effect.map(accounts.refresh(payload.refreshToken), (data) => ({ success: true, data }) as const))
      .handle("logout", () =>
        Effect.flatMap(CurrentUser, (user) => accounts.logout(user)).pipe(Effect.as({ success: true } as const)))
      .handle("profile", () => Effect.flatMap(CurrentUser, (user) => accounts.profile(user)))
      .handle("updateProfile", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const result = yield* accounts.updateProfile(user, payload, yield* guard.clientAddress)
          return { success: true, data: result, ...result } as const
        }))
  }))
