import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * The one credit ledger: `users.balance` is the balance, `credit_ledger` the append-only record of
 * every change to it (see services/Ledger.ts). Balances are read as JS numbers, so both sides are
 * held to the safe-integer range here rather than trusted to every writer.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE users ADD CONSTRAINT users_balance_safe_integer CHECK (balance <= 9007199254740991)`
  yield* sql`
    CREATE TABLE credit_ledger (
      id bigserial PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      delta bigint NOT NULL,
      balance_after bigint NOT NULL CHECK (balance_after >= 0 AND balance_after <= 9007199254740991),
      kind text NOT NULL CHECK (kind IN ('purchase', 'bonus', 'usage', 'refund', 'adjustment')),
      reason text NOT NULL,
      reference text,
      idempotency_key text NOT NULL UNIQUE,
      refund_of text UNIQUE REFERENCES credit_ledger (idempotency_key) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      CHECK ((kind = 'refund') = (refund_of IS NOT NULL)),
      CHECK (CASE kind WHEN 'usage' THEN delta <= 0 WHEN 'adjustment' THEN true ELSE delta >= 0 END)
    )`
  yield* sql`CREATE INDEX credit_ledger_user_id_id ON credit_ledger (user_id, id DESC)`
})
