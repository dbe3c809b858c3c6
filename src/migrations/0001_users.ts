import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** Accounts and their server-side sessions (a JWT names its session, so revocation is immediate). */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE users (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      email text NOT NULL UNIQUE CHECK (email = lower(btrim(email)) AND email <> ''),
      password_hash text NOT NULL,
      name text,
      role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
      tags text[] NOT NULL DEFAULT '{}',
      balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE sessions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      refresh_token_hash text UNIQUE,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz
    )`
  yield* sql`CREATE INDEX sessions_user_id ON sessions (user_id)`
})
