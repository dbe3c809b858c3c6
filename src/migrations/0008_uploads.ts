import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Uploaded files and the storage each user fills.
 * - storage_usage: one row per user who uploaded; used_bytes is reserved before a file is written and
 *   released on failure or delete (services/uploads/StorageQuota.ts), never below zero; quota_bytes NULL
 *   means the configured default (STORAGE_QUOTA_BYTES).
 * - uploads: one row per stored file; the storage key, kind, size and type are the server's, never the
 *   client's. The client's name is kept only, sanitised, for Content-Disposition.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE storage_usage (
      user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
      used_bytes bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
      quota_bytes bigint CHECK (quota_bytes >= 0)
    )`
  yield* sql`
    CREATE TABLE uploads (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      kind text NOT NULL CHECK (kind IN ('video', 'audio', 'image')),
      storage_key text NOT NULL UNIQUE,
      size_bytes bigint NOT NULL CHECK (size_bytes > 0),
      mime text NOT NULL,
      extension text NOT NULL,
      original_name text NOT NULL,
      duration_seconds double precision,
      width integer,
      height integer,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX uploads_user_created ON uploads (user_id, created_at DESC)`
})
