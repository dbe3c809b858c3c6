import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { Ledger } from "../../services/credits/Ledger.js"
import { Api } from "../Api.js"

export const CreditsHandlers = HttpApiBuilder.group(Api, "credits", (handlers) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    return handlers
      // The hottest authenticated route: the body is already exactly the declared success schema
      // (a number from the ledger), so it is written as it is, not encoded through the schema again.
      .handle("balance", () =>
        Effect.flatMap(CurrentUser, (user) => ledger.balance(user.id)).pipe(
          Effect.map((balance) => HttpServerResponse.unsafeJson({ success: true, data: { balance } })),
          Effect.orDie
        ))
      .handle("history", ({ urlParams }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const page = yield* ledger.history(user.id, {
            cursor: urlParams.cursor,
            limit: urlParams.limit
          }).pipe(Effect.orDie)
          const body = page.items.map((entry) => ({
            id: String(entry.id),
            amount: entry.delta,
            type: entry.kind,
            description: entry.reason,
            balance: entry.balanceAfter,
            createdAt: entry.createdAt.toISOString()
          }))
          return HttpServerResponse.unsafeJson(body, {
            headers: page.nextCursor === null ? {} : { "x-next-cursor": String(page.nextCursor) }
          })
        }))
  }))
