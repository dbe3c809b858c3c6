import { Context, type Duration, type Effect, type Option } from "effect"
import type { CurrentUserShape } from "./CurrentUser.js"
import type { LiveSession } from "./SessionMirror.js"

/**
 * Server-side sessions. A session is live until it is revoked or expires; its refresh token is stored
 * only as a digest (the accounts service hashes it), and the digests it rotated away are kept, so a
 * reused one can be recognised. Every revocation reaches the session mirror before it returns, and
 * every replica's mirror through a notification at commit (see SessionMirror). Storage failures are
 * defects.
 */
export interface SessionRepositoryShape {
  /** Opens a session for the user, live for `ttl`; returns its id. */
  readonly open: (session: {
    readonly userId: string
    readonly refreshTokenHash: string
    readonly ttl: Duration.Duration
  }) => Effect.Effect<string>
  /** The user of a live session, if the session is live and belongs to `userId`. */
  readonly authenticate: (claims: { readonly sessionId: string; readonly userId: string }) => Effect.Effect<Option.Option<CurrentUserShape>>
  /** The same, with when the session ends. */
  readonly findLive: (claims: { readonly sessionId: string; readonly userId: string }) => Effect.Effect<Option.Option<LiveSession>>
  readonly isLive: (sessionId: string) => Effect.Effect<boolean>
  /** Revokes one session (no-op when already revoked). */
  readonly revoke: (sessionId: string) => Effect.Effect<void>
  /** Revokes every live session of a user. */
  readonly revokeAllOf: (userId: string) => Effect.Effect<void>
  /**
   * Replaces the live session's refresh token digest `presented` with `next` and retires `presented`,
   * in one statement: both happen or neither. A concurrent rotation of the same digest waits on the
   * session row, then finds it rotated away (None). None when no live session holds `presented`.
   */
  readonly rotate: (digests: { readonly presented: string; readonly next: string }) => Effect.Effect<Option.Option<{ readonly sessionId: string; readonly userId: string }>>
  /** Revokes the live session that `digest` was rotated away from; its id, or None when there is none. */
  readonly revokeRetired: (digest: string) => Effect.Effect<Option.Option<string>>
}

export class SessionRepository extends Context.Tag("app/SessionRepository")<SessionRepository, SessionRepositoryShape>() {}
