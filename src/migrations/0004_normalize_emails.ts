import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { normalizeEmail } from "../services/accounts/email.js"

/**
 * Brings stored emails to the form sign-in now compares (services/auth/email.ts: NFKC, lower
 * case), so an account created before that rule can still sign in. Done here in JS rather than
 * with Postgres' normalize()/lower(), whose lower() depends on the database collation and may not
 * match the app's. An address whose normalised form already belongs to another account (one person
 * with two accounts, created while the rule was missing) is left unchanged and logged: merging
 * accounts and their credits is an operator's decision, not a migration's.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ id: string; email: string }>`SELECT id, email FROM users ORDER BY created_at, id`
  const taken = new Set(rows.map((row) => row.email))
  for (const row of rows) {
    const email = normalizeEmail(row.email)
    if (email === row.email) continue
    if (taken.has(email)) {
      yield* Effect.logWarning("email left unnormalised: its normalised form belongs to another account", { userId: row.id })
      continue
    }
    yield* sql`UPDATE users SET email = ${email} WHERE id = ${row.id}`
    taken.delete(row.email)
    taken.add(email)
  }
})
