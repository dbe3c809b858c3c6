import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * One row per generation, for every app (services/generations/Generations.ts). Money is exact integer
 * credits held to the safe-integer range like the ledger's: `credit_cost` is the price, `charged`
 * what the ledger took (0 for an enterprise user), `refunded` what went back (never more than charged).
 * The status rules are CHECKs here as well, so no writer can store an impossible row.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE generations (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      app text NOT NULL CHECK (app ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
      project_id uuid,
      status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'partial', 'failed', 'cancelled')),
      progress smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
      units_requested integer NOT NULL CHECK (units_requested > 0),
      units_delivered integer NOT NULL DEFAULT 0 CHECK (units_delivered BETWEEN 0 AND units_requested),
      credit_cost bigint NOT NULL CHECK (credit_cost > 0 AND credit_cost <= 9007199254740991),
      charged bigint NOT NULL CHECK (charged BETWEEN 0 AND credit_cost),
      refunded bigint NOT NULL DEFAULT 0 CHECK (refunded BETWEEN 0 AND charged),
      settings jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
      seed bigint,
      outputs jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(outputs) = 'array'),
      error_code text,
      error_message text,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      started_at timestamptz,
      completed_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      CHECK ((status IN ('completed', 'partial', 'failed', 'cancelled')) = (completed_at IS NOT NULL)),
      CHECK (status NOT IN ('pending', 'processing') OR refunded = 0)
    )`
  // The list queries: a user's generations, optionally of one app, newest or oldest first.
  yield* sql`CREATE INDEX generations_user_created ON generations (user_id, created_at DESC, id DESC)`
  yield* sql`CREATE INDEX generations_user_app_created ON generations (user_id, app, created_at DESC, id DESC)`
})
