import { SqlClient } from "@effect/sql"
import { Duration, Effect, Layer, Option } from "effect"
import type { CurrentUserShape } from "../../services/accounts/CurrentUser.js"
import { SessionRepository } from "../../services/accounts/SessionRepository.js"

/** Sessions in Postgres (`sessions`, `retired_refresh_tokens`). Owns no resource: statements run on the pool DatabaseLive owns. */
export const SessionRepositoryLive = Layer.effect(
  SessionRepository,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    return SessionRepository.of({
      open: ({ refreshTokenHash, ttl, userId }) =>
        sql<{ id: string }>`
          INSERT INTO sessions (user_id, refresh_token_hash, expires_at)
          VALUES (${userId}, ${refreshTokenHash}, now() + make_interval(secs => ${Math.floor(Duration.toSeconds(ttl))}))
          RETURNING id`.pipe(Effect.map((rows) => rows[0]!.id), Effect.orDie),

      authenticate: ({ sessionId, userId }) =>
        sql<Omit<CurrentUserShape, "sessionId"> & { session_id: string }>`
          SELECT u.id, u.email, u.role, u.tags, s.id AS session_id
          FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.id = ${sessionId} AND s.user_id = ${userId}
            AND s.revoked_at IS NULL AND s.expires_at > now()`.pipe(
          Effect.map((rows) =>
            Option.map(Option.fromNullable(rows[0]), (row): CurrentUserShape => ({
              id: row.id,
              email: row.email,
              role: row.role,
              tags: row.tags,
              sessionId: row.session_id
            }))
          ),
          Effect.orDie
        ),

      isLive: (sessionId) =>
        sql`SELECT 1 FROM sessions WHERE id = ${sessionId} AND revoked_at IS NULL AND expires_at > now()`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.orDie
        ),

      revoke: (sessionId) =>
        sql`UPDATE sessions SET revoked_at = now() WHERE id = ${sessionId} AND revoked_at IS NULL`.pipe(Effect.asVoid, Effect.orDie),

      revokeAllOf: (userId) =>
        sql`UPDATE sessions SET revoked_at = now() WHERE user_id = ${userId} AND revoked_at IS NULL`.pipe(Effect.asVoid, Effect.orDie),

      rotate: ({ next, presented }) =>
        // One statement, so the rotation and the retired digest commit together.
        sql<{ id: string; user_id: string }>`
          WITH rotated AS (
            UPDATE sessions SET refresh_token_hash = ${next}
            WHERE refresh_token_hash = ${presented} AND revoked_at IS NULL AND expires_at > now()
            RETURNING id, user_id
          ), retired AS (
            INSERT INTO retired_refresh_tokens (token_hash, session_id) SELECT ${presented}, id FROM rotated
          )
          SELECT id, user_id FROM rotated`.pipe(
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => ({ sessionId: row.id, userId: row.user_id }))),
          Effect.orDie
        ),

      revokeRetired: (digest) =>
        sql<{ id: string }>`
          UPDATE sessions SET revoked_at = now()
          WHERE id = (SELECT session_id FROM retired_refresh_tokens WHERE token_hash = ${digest}) AND revoked_at IS NULL
          RETURNING id`.pipe(Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => row.id)), Effect.orDie)
    })
  })
)
