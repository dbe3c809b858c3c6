import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { AppConfig } from "../platform/AppConfig.js"
import { StorageQuotaExceeded } from "./UploadError.js"

export interface StorageUsage {
  readonly used: number
  readonly quota: number
  readonly available: number
}

interface UsageRow {
  readonly used: string
  readonly quota: string
}

const toUsage = (row: UsageRow): StorageUsage => {
  const used = Number(row.used)
  const quota = Number(row.quota)
  return { used, quota, available: Math.max(0, quota - used) }
}

/**
 * Each user's storage: bytes are reserved before a file is written, by one conditional UPDATE (so
 * concurrent uploads of one user can never pass the quota together), and released on failure or delete.
 */
export class StorageQuota extends Effect.Service<StorageQuota>()("app/StorageQuota", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const config = yield* AppConfig
    const defaultQuota = config.uploads.quotaBytes

    const usage = Effect.fn("StorageQuota.usage")(function*(userId: string) {
      const rows = yield* sql<UsageRow>`
        SELECT coalesce(max(used_bytes), 0)::text AS used, coalesce(max(quota_bytes), ${defaultQuota}::bigint)::text AS quota
        FROM storage_usage WHERE user_id = ${userId}`.pipe(Effect.orDie)
      return toUsage(rows[0] ?? { used: "0", quota: String(defaultQuota) })
    })

    /** Adds `bytes` to the user's usage if it stays within their quota; otherwise fails and changes nothing. */
    const reserve = Effect.fn("StorageQuota.reserve")(function*(userId: string, bytes: number) {
      yield* sql`INSERT INTO storage_usage (user_id) VALUES (${userId}) ON CONFLICT (user_id) DO NOTHING`.pipe(Effect.orDie)
      const rows = yield* sql<UsageRow>`
        UPDATE storage_usage SET used_bytes = used_bytes + ${bytes}::bigint
        WHERE user_id = ${userId} AND used_bytes + ${bytes}::bigint <= coalesce(quota_bytes, ${defaultQuota}::bigint)
        RETURNING used_bytes::text AS used, coalesce(quota_bytes, ${defaultQuota}::bigint)::text AS quota`.pipe(Effect.orDie)
      const reserved = rows[0]
      if (reserved !== undefined) return toUsage(reserved)
      const current = yield* usage(userId)
      return yield* new StorageQuotaExceeded({
        message: `Storage quota exceeded: ${current.available} of ${current.quota} bytes available, the file needs ${bytes}`,
        ...current,
        fileSize: bytes
      })
    })

    /** Gives `bytes` back (a failed upload, a deleted file, the unused part of a reservation). */
    const release = Effect.fn("StorageQuota.release")(function*(userId: string, bytes: number) {
      if (bytes <= 0) return
      yield* sql`
        UPDATE storage_usage SET used_bytes = greatest(used_bytes - ${bytes}::bigint, 0) WHERE user_id = ${userId}`.pipe(
        Effect.orDie
      )
    })

    return { usage, reserve, release }
  })
}) {}
