import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Credit purchases through Duitku.
 * - payment_packages: the server's price list (the client's price is never trusted), seeded with the
 *   packages of the web app (frontend-contract 2.3). Amounts are whole rupiah.
 * - payments: one row per purchase attempt; `reference` stays NULL until the gateway answers (NULLs
 *   never collide, so a failed inquiry blocks nothing). status moves pending -> success | failed |
 *   expired once (Payments.ts); a late success of an expired payment is still honoured.
 * - payment_callbacks: every callback received, accepted or not, minus its signature, for audit.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE payment_packages (
      id text PRIMARY KEY CHECK (id ~ '^[a-z0-9-]{1,64}$'),
      name text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('subscription', 'topup')),
      amount bigint NOT NULL CHECK (amount > 0),
      credits bigint NOT NULL CHECK (credits > 0),
      active boolean NOT NULL DEFAULT true,
      position integer NOT NULL DEFAULT 0
    )`
  yield* sql`
    INSERT INTO payment_packages (id, name, kind, amount, credits, position) VALUES
      ('pebisnis', 'Pebisnis', 'subscription', 99000, 1800, 1),
      ('juragan', 'Juragan', 'subscription', 249000, 4800, 2),
      ('topup-1500', 'Top up 1,500 credits', 'topup', 100000, 1500, 3),
      ('topup-4000', 'Top up 4,000 credits', 'topup', 250000, 4000, 4),
      ('topup-9000', 'Top up 9,000 credits', 'topup', 500000, 9000, 5)`
  yield* sql`
    CREATE TABLE payments (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      package_id text NOT NULL REFERENCES payment_packages (id),
      merchant_order_id text NOT NULL UNIQUE,
      reference text UNIQUE,
      amount bigint NOT NULL CHECK (amount > 0),
      credits bigint NOT NULL CHECK (credits > 0),
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'success', 'failed', 'expired')),
      payment_url text,
      payment_method text,
      failure_reason text,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      settled_at timestamptz
    )`
  yield* sql`CREATE INDEX payments_user_status ON payments (user_id, status)`
  yield* sql`CREATE INDEX payments_status_created ON payments (status, created_at)`
  yield* sql`CREATE INDEX payments_pending_expires ON payments (expires_at) WHERE status = 'pending'`
  yield* sql`
    CREATE TABLE payment_callbacks (
      id bigserial PRIMARY KEY,
      payment_id uuid REFERENCES payments (id) ON DELETE CASCADE,
      merchant_order_id text,
      source_address text,
      outcome text NOT NULL,
      fields jsonb NOT NULL,
      received_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX payment_callbacks_payment ON payment_callbacks (payment_id)`
})
