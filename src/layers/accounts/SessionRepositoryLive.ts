import { SqlClient, type Statement } from "@effect/sql"
import { Duration, Effect, Layer, Option } from "effect"
import type { CurrentUserShape } from "../../services/accounts/CurrentUser.js"
import { SESSION_REVOKED_CHANNEL, type LiveSession, SessionMirror } from "../../services/accounts/SessionMirror.js"
import { SessionRepository } from "../../services/accounts/SessionRepository.js"

/**
 * Sessions in Postgres (`sessions`, `retired_refresh_tokens`). A revocation notifies
 * SESSION_REVOKED_CHANNEL in the same statement (delivered at commit, to every replica), then
 * tombstones the session in this replica's mirror before it returns. Owns no resource: statements
 * run on the pool DatabaseLive owns.
 */
export const SessionRepositoryLive = Layer.effect(
  SessionRepository,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const mirror = yield* SessionMirror

    /** `revoking` is an UPDATE of sessions RETURNING id; each id is notified, then tombstoned here. */
    const revokeWith = (revoking: Statement.Statement<{ id: string }>) =>
      sql<{ id: string }>`WITH revoked AS (${revoking}) SELECT id, pg_notify(${SESSION_REVOKED_CHANNEL}, id::text) FROM revoked`.pipe(
        Effect.map((rows) => rows.map((row) => row.id)),
        Effect.tap((ids) => mirror.revoked(ids)),
        Effect.orDie
      )

    const findLive = ({ sessionId, userId }: { readonly sessionId: string; readonly userId: string }) =>
      sql<Omit<CurrentUserShape, "sessionId"> & { session_id: string; expires_at: Date }>`
        SELECT u.id, u.email, u.role, u.tags, s.id AS session_id, s.expires_at
        FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = ${sessionId} AND s.user_id = ${userId}
          AND s.revoked_at IS NULL AND s.expires_at > now()`.pipe(
        Effect.map((rows) =>
          Option.map(Option.fromNullable(rows[0]), (row): LiveSession => ({
            user: { id: row.id, email: row.email, role: row.role, tags: row.tags, sessionId: row.session_id },
            expiresAt: row.expires_at
          }))
        ),
        Effect.orDie
      )

    return SessionRepository.of({
      open: ({ refreshTokenHash, ttl, userId }) =>
        sql<{ id: string }>`
          INSERT INTO sessions (user_id, refresh_token_hash, expires_at)
          VALUES (${userId}, ${refreshTokenHash}, now() + make_interval(secs => ${Math.floor(Duration.toSeconds(ttl))}))
          RETURNING id`.pipe(Effect.map((rows) => rows[0]!.id), Effect.orDie),

      authenticate: (claims) => Effect.map(findLive(claims), Option.map((session) => session.user)),

      findLive,

      isLive: (sessionId) =>
        sql`SELECT 1 FROM sessions WHERE id = ${sessionId} AND revoked_at IS NULL AND expires_at > now()`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.orDie
        ),

      revoke: (sessionId) =>
        // A tombstone even when Postgres had it revoked already: a mirror may have missed it.
        revokeWith(sql`UPDATE sessions SET revoked_at = now() WHERE id = ${sessionId} AND revoked_at IS NULL RETURNING id`).pipe(
          Effect.flatMap((ids) => (ids.length === 0 ? mirror.revoked([sessionId]) : Effect.void))
        ),

      revokeAllOf: (userId) =>
        revokeWith(sql`UPDATE sessions SET revoked_at = now() WHERE user_id = ${userId} AND revoked_at IS NULL RETURNING id`).pipe(
          Effect.asVoid
        ),

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
        revokeWith(sql`
          UPDATE sessions SET revoked_at = now()
          WHERE id = (SELECT session_id FROM retired_refresh_tokens WHERE token_hash = ${digest}) AND revoked_at IS NULL
          RETURNING id`).pipe(Effect.map((ids) => Option.fromNullable(ids[0])))
    })
  })
)
