import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { LedgerKind } from "../../services/credits/LedgerKind.js"
import { RateLimited, ServiceUnavailable } from "../platform/ApiError.js"
import { Authentication } from "../accounts/Authentication.js"

export const HistoryItem = Schema.Struct({
  id: Schema.String,
  amount: Schema.Number,
  type: LedgerKind,
  description: Schema.String,
  balance: Schema.Number,
  createdAt: Schema.String
}).annotations({ identifier: "CreditHistoryItem" })

const cursorMessage = { message: () => "cursor must be the X-Next-Cursor value of the previous page" }
/** A ledger id: digits that name a safe integer (9007199254740993 would round to another id). */
const Cursor = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^[1-9]\d{0,15}$/, cursorMessage)),
  Schema.NumberFromString
).pipe(Schema.filter((n) => Number.isSafeInteger(n), cursorMessage))
const Limit = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^\d{1,3}$/, { message: () => "limit must be a whole number from 1 to 100" })),
  Schema.NumberFromString
).pipe(Schema.between(1, 100, { message: () => "limit must be a whole number from 1 to 100" }))

/** The caller's balance and ledger, in the shapes the Lumiku web app reads. */
export class CreditsApi extends HttpApiGroup.make("credits")
  .add(
    HttpApiEndpoint.get("balance", "/balance")
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), data: Schema.Struct({ balance: Schema.Number }) }))
  )
  .add(
    HttpApiEndpoint.get("history", "/history")
      .setUrlParams(Schema.Struct({ cursor: Schema.optional(Cursor), limit: Schema.optionalWith(Limit, { default: () => 50 }) }))
      .addSuccess(Schema.Array(HistoryItem))
      .annotate(OpenApi.Description, "Newest first, as a bare array. The next page: ?cursor=<X-Next-Cursor>; no header on the last page.")
  )
  .addError(RateLimited)
  .addError(ServiceUnavailable)
  .middleware(Authentication)
  .prefix("/api/credits")
  .annotate(OpenApi.Title, "Credits") {}
