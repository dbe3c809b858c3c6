import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Refresh tokens a session has rotated away from (their SHA-256 hashes), so presenting one again is
 * recognised as reuse and ends the session (services/Auth.ts `refresh`). Removed with the session.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE retired_refresh_tokens (
      token_hash text PRIMARY KEY,
      session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      retired_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX retired_refresh_tokens_session_id ON retired_refresh_tokens (session_id)`
})
