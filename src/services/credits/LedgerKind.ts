import { Schema } from "effect"

/**
 * What a ledger row records: the one list. The API's history `type` is this schema, and the CHECK
 * constraint of credit_ledger.kind (migration 0002) is compared with it by test/credits/ledgerKind.test.ts.
 * A new kind needs a migration that widens that constraint.
 */
export const LedgerKind = Schema.Literal("purchase", "bonus", "usage", "refund", "adjustment")
export type LedgerKind = typeof LedgerKind.Type

/** What a debit may be: usage by an app, or an operator's adjustment. */
export type DebitKind = Extract<LedgerKind, "usage" | "adjustment">
/** What a credit may be; refunds have their own operation. */
export type CreditKind = Extract<LedgerKind, "purchase" | "bonus" | "adjustment">
