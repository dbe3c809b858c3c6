import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * The amount each ledger operation asked for, before the enterprise exemption, so an idempotent replay
 * can compare it even when the charge wrote a 0 delta. Rows written before this migration that charged 0
 * keep NULL: what they asked for was never recorded (Ledger treats NULL as "compare the delta only").
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE credit_ledger ADD COLUMN requested_amount bigint CHECK (requested_amount >= 0)`
  yield* sql`UPDATE credit_ledger SET requested_amount = abs(delta) WHERE NOT (kind = 'usage' AND delta = 0)`
})
