import { Context, Effect, Metric } from "effect"
import type { RateLimitDecision, RateLimitPolicy } from "../platform/RateLimiter.js"
import type { CurrentUserShape } from "./CurrentUser.js"

/** Postgres notifies this channel, at commit, with the id of every session it revoked. */
export const SESSION_REVOKED_CHANNEL = "lumiku_session_revoked"

/** A live session as Postgres holds it: its user, and when it ends. */
export interface LiveSession {
  readonly user: CurrentUserShape
  readonly expiresAt: Date
}

/**
 * What the mirror answers for a session:
 * - Hit: the session is mirrored and live, and the caller's request was counted against `policy`
 *   in the same round trip;
 * - Miss: not mirrored (or mirrored before the current generation); Postgres decides, and a live
 *   session may be mirrored under `generation`, the one read before asking Postgres;
 * - Unusable: not trusted now (Redis or the revocation feed down, not resynchronised yet), the
 *   session was revoked (a tombstone), or Redis failed: Postgres decides, nothing is mirrored.
 * Nothing is counted against the limit except on a Hit.
 */
export type MirrorCheck =
  | {
    readonly _tag: "Hit"
    readonly user: CurrentUserShape
    readonly decision: RateLimitDecision
    /** The decision of the second window `check` was asked for, when the first allowed the request. */
    readonly also?: RateLimitDecision | undefined
  }
  | { readonly _tag: "Miss"; readonly generation: string } // opaque: handed back to `fill`
  | { readonly _tag: "Unusable" }

export interface SessionMirrorShape {
  /**
   * Looks the session up and, when it is mirrored and live, counts the request under `policy` at
   * `limitKey`, and then, when that allowed it, under `also` (a route's own limit) in the same round trip.
   */
  readonly check: (
    claims: { readonly sessionId: string; readonly userId: string },
    policy: RateLimitPolicy,
    limitKey: string,
    also?: { readonly policy: RateLimitPolicy; readonly limitKey: string }
  ) => Effect.Effect<MirrorCheck>
  /** Mirrors a session Postgres just found live, unless the generation moved or it was revoked meanwhile. */
  readonly fill: (generation: string, session: LiveSession) => Effect.Effect<void>
  /**
   * Marks sessions revoked (Postgres already holds it). When Redis cannot take it, this replica
   * stops trusting the mirror until it has moved the generation on (every record then unusable).
   */
  readonly revoked: (sessionIds: ReadonlyArray<string>) => Effect.Effect<void>
}

/**
 * Live sessions mirrored in Redis, so an authenticated request checks its session and its rate
 * limit in one Redis round trip instead of a Postgres query plus a Redis call. Postgres stays the
 * authority: see SessionMirrorRedis for why a revoked session is never accepted from it.
 */
export class SessionMirror extends Context.Tag("app/SessionMirror")<SessionMirror, SessionMirrorShape>() {
  /** A mirror that holds nothing: every check goes to Postgres (tests, or a process that serves no users). */
  static readonly none: SessionMirrorShape = {
    check: () => Effect.succeed({ _tag: "Unusable" }),
    fill: () => Effect.void,
    revoked: () => Effect.void
  }
}

/** Mirror lookups by result (hit, miss, unusable). */
export const sessionMirrorChecks = Metric.counter("session_mirror_checks_total", {
  description: "Session lookups in the Redis mirror, by result"
})
