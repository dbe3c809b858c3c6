import { Duration, Effect, Layer, Metric, Redacted, Runtime } from "effect"
import pg from "pg"
import type { CurrentUserShape } from "../../services/accounts/CurrentUser.js"
import {
  type LiveSession,
  type MirrorCheck,
  SESSION_REVOKED_CHANNEL,
  SessionMirror,
  sessionMirrorChecks,
  type SessionMirrorShape
} from "../../services/accounts/SessionMirror.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { errorCodeOf } from "../../services/platform/errorCode.js"
import { awaitWithin } from "../../services/platform/Lifecycle.js"
import { Redis } from "../../services/platform/Redis.js"
import { decisionOf, SLIDING_WINDOW_FUNCTION, windowKey, windowMember, withinBudget } from "../platform/RateLimiterRedis.js"

/** Every record is written with the generation current when its Postgres read began. */
const GENERATION_KEY = "sess:gen"
const sessionKey = (sessionId: string) => `sess:${sessionId}`
const TOMBSTONE = "revoked"
/** A record lives at most this long, so a role or tag changed in Postgres by hand shows within it. */
const RECORD_TTL_MS = 5 * 60_000
/** Outlives every record, so no fill whose Postgres read predates a revocation can land after it. */
const TOMBSTONE_TTL_MS = 2 * RECORD_TTL_MS
const RESYNC_EVERY_MS = 1_000
const LISTEN_RETRY_CAP_MS = 10_000
const LISTENER_END_LIMIT = Duration.seconds(1)

/**
 * {0, generation}: not mirrored under the current generation; {-1}: revoked, expired or another
 * user's; {1, allowed, remaining, resetMs, retryAfterMs, user JSON}: live, and counted; with a fourth
 * key (a second window, ARGV[5..7]) and the first window allowing, its decision follows the user.
 * A record is "generation|userId|expiresAtMs|user JSON".
 */
const CHECK = `${SLIDING_WINDOW_FUNCTION}
local generation = redis.call('GET', KEYS[2]) or '0'
local record = redis.call('GET', KEYS[1])
if not record then return {0, generation} end
if record == '${TOMBSTONE}' then return {-1} end
local g, userId, expiresAt, user = string.match(record, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
if g ~= generation then return {0, generation} end
if userId ~= ARGV[1] then return {-1} end
local now = redisNowMs()
if tonumber(expiresAt) <= now then return {-1} end
local d = slidingWindow(KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], now)
if #KEYS == 4 and d[1] == 1 then
  local e = slidingWindow(KEYS[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], now)
  return {1, d[1], d[2], d[3], d[4], user, e[1], e[2], e[3], e[4]}
end
return {1, d[1], d[2], d[3], d[4], user}
`

/** Writes the record unless the session was revoked or the generation moved since ARGV[1] was read. */
const FILL = `
if redis.call('GET', KEYS[1]) == '${TOMBSTONE}' then return 0 end
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
`

type Reply = Array<number | string>
interface MirrorCommands {
  readonly lumikuSessionCheck: (...args: Array<string | number>) => Promise<Reply>
  readonly lumikuSessionCheckTwo: (...args: Array<string | number>) => Promise<Reply>
  readonly lumikuSessionFill: (...args: Array<string | number>) => Promise<number>
}

const UNUSABLE: MirrorCheck = { _tag: "Unusable" }
const counted = (result: "hit" | "miss" | "unusable") => Metric.tagged(sessionMirrorChecks, "result", result)
const HIT = counted("hit")
const MISS = counted("miss")
const UNUSED = counted("unusable")

/**
 * The session mirror in Redis. Postgres stays the authority; the mirror is only trusted while it
 * cannot have missed a revocation:
 * - a revocation writes Postgres first (with a NOTIFY on SESSION_REVOKED_CHANNEL, sent at commit),
 *   then a tombstone over the record (SessionRepositoryLive), before the request answers;
 * - every replica LISTENs and writes the tombstone too, so a replica cut off from Redis still has
 *   its revocation applied by the others (within the notification's delivery, milliseconds);
 * - a record is only written if no tombstone is there and the generation is the one read before
 *   the Postgres read, so a fill racing a revocation can never land after it;
 * - this replica stops trusting the mirror whenever its Redis connection closes, its LISTEN
 *   connection drops (it may have missed notifications), or a tombstone could not be written; it
 *   trusts it again only after both connections are up and it has moved the generation on (INCR),
 *   which makes every record written before unusable: a Redis that comes back from a restart or a
 *   snapshot with a stale live record serves nothing from it.
 * While untrusted, every check is Unusable and Postgres answers, as before the mirror.
 *
 * Owns the LISTEN connection (a pg.Client of its own, reconnected with backoff) and a resync
 * timer; both are released with the layer. The Redis connection is the request-path one (Redis).
 */
export const SessionMirrorRedis = Layer.scoped(
  SessionMirror,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const redis = yield* Redis
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const client = redis.client
    client.defineCommand("lumikuSessionCheck", { numberOfKeys: 3, lua: CHECK })
    client.defineCommand("lumikuSessionCheckTwo", { numberOfKeys: 4, lua: CHECK })
    client.defineCommand("lumikuSessionFill", { numberOfKeys: 2, lua: FILL })
    // defineCommand adds the methods at runtime; ioredis' types cannot know about them.
    const commands = client as unknown as MirrorCommands

    let trusted = false
    let listening = false
    let syncing = false
    let closed = false
    /** Moves on every event after which the mirror may lack a revocation; a resync begun before it does not count. */
    let epoch = 0
    const distrust = () => {
      trusted = false
      epoch++
    }
    const resync = () => {
      if (trusted || syncing || closed || !listening || client.status !== "ready") return
      syncing = true
      const began = epoch
      client.incr(GENERATION_KEY).then(
        () => {
          if (began === epoch && listening && client.status === "ready") trusted = true
        },
        () => undefined
      ).finally(() => {
        syncing = false
      })
    }
    client.on("close", distrust)
    client.on("ready", resync)
    const timer = setInterval(resync, RESYNC_EVERY_MS)

    const tombstones = (sessionIds: ReadonlyArray<string>) =>
      Effect.tryPromise(() => {
        const pipeline = client.pipeline()
        for (const id of sessionIds) pipeline.set(sessionKey(id), TOMBSTONE, "PX", TOMBSTONE_TTL_MS)
        return pipeline.exec()
      }).pipe(
        Effect.flatMap((results) =>
          results?.every(([error]) => error === null) === true ? Effect.void : Effect.fail(new Error("a tombstone was not written"))
        ),
        Effect.catchAll((error) => {
          distrust()
          return Effect.logWarning("session tombstone not written; the mirror is unused until resynchronised", {
            sessions: sessionIds.length,
            error: errorCodeOf(error) ?? String(error)
          })
        })
      )

    // The revocation feed. Any gap in it is a gap in what this replica knows: distrust, reconnect.
    let listener: pg.Client | undefined
    let attempt = 0
    let retry: ReturnType<typeof setTimeout> | undefined
    const listen = () => {
      if (closed) return
      const next = new pg.Client({
        connectionString: Redacted.value(config.database.url),
        application_name: "lumiku-backend:session-revocations",
        connectionTimeoutMillis: Duration.toMillis(config.database.connectTimeout),
        keepAlive: true
      })
      listener = next
      const lost = () => {
        if (listener !== next) return
        listener = undefined
        listening = false
        distrust()
        next.end().catch(() => undefined)
        if (closed) return
        const delay = Math.min(LISTEN_RETRY_CAP_MS, 100 * 2 ** Math.min(attempt++, 10))
        retry = setTimeout(listen, Math.round(delay * (0.5 + Math.random() / 2)))
      }
      next.on("error", lost)
      next.on("end", lost)
      next.on("notification", (message) => {
        if (message.channel === SESSION_REVOKED_CHANNEL && message.payload) runFork(tombstones([message.payload]))
      })
      next.connect()
        .then(() => next.query(`LISTEN ${SESSION_REVOKED_CHANNEL}`))
        .then(() => {
          if (listener !== next) return
          attempt = 0
          listening = true
          resync()
        }, lost)
    }
    listen()
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        distrust()
        clearInterval(timer)
        if (retry !== undefined) clearTimeout(retry)
        client.off("close", distrust)
        client.off("ready", resync)
        const current = listener
        listener = undefined
        if (current === undefined) return Effect.void
        // A server that never answers cannot hold the release: past the bound the socket goes with the process.
        return awaitWithin(() => current.end(), LISTENER_END_LIMIT).pipe(
          Effect.catchAll(() => Effect.sync(() => (current as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()))
        )
      })
    )

    // Trust is read again right where a command is sent (synchronously with the write to the
    // socket): no command leaves on a connection that reconnected since the mirror was resynchronised.
    const untrusted = () => Promise.reject(new Error("the session mirror is not trusted now"))

    const check: SessionMirrorShape["check"] = (claims, policy, limitKey, also) => {
      if (!trusted) return Effect.as(Metric.increment(UNUSED), UNUSABLE)
      const at = epoch
      const send = () => {
        if (!trusted) return untrusted()
        const session = sessionKey(claims.sessionId)
        const window = windowKey(policy, limitKey)
        return also === undefined
          ? commands.lumikuSessionCheck(session, GENERATION_KEY, window, claims.userId, policy.limit, policy.windowMs, windowMember())
          : commands.lumikuSessionCheckTwo(
            session, GENERATION_KEY, window, windowKey(also.policy, also.limitKey),
            claims.userId, policy.limit, policy.windowMs, windowMember(), also.policy.limit, also.policy.windowMs, windowMember()
          )
      }
      return withinBudget("session-mirror", send).pipe(
          Effect.flatMap((reply): Effect.Effect<MirrorCheck> => {
            if (reply[0] === 1) {
              const user = { ...(JSON.parse(String(reply[5])) as Omit<CurrentUserShape, "sessionId">), sessionId: claims.sessionId }
              const decision = decisionOf(policy.limit, reply.slice(1, 5) as Array<number>)
              const second = also !== undefined && reply.length >= 10 ? decisionOf(also.policy.limit, reply.slice(6, 10) as Array<number>) : undefined
              return Effect.as(Metric.increment(HIT), { _tag: "Hit", user, decision, also: second })
            }
            // The epoch travels with the generation: a fill from before a distrust is dropped, even if
            // a Redis restored from a snapshot shows the same generation again.
            if (reply[0] === 0) return Effect.as(Metric.increment(MISS), { _tag: "Miss", generation: `${at}:${String(reply[1])}` })
            return Effect.as(Metric.increment(UNUSED), UNUSABLE)
          }),
          Effect.catchAll(() => Effect.as(Metric.increment(UNUSED), UNUSABLE))
        )
    }

    const fill = (generation: string, session: LiveSession) =>
      Effect.suspend(() => {
        const ttl = Math.min(RECORD_TTL_MS, session.expiresAt.getTime() - Date.now())
        const separator = generation.indexOf(":")
        const observedAt = Number(generation.slice(0, separator))
        const stillCurrent = () => trusted && observedAt === epoch
        if (!stillCurrent() || ttl <= 0) return Effect.void
        const { email, id, role, tags } = session.user
        const record = `${id}|${session.expiresAt.getTime()}|${JSON.stringify({ id, email, role, tags })}`
        return withinBudget("session-mirror", () =>
          !stillCurrent()
            ? untrusted()
            : commands.lumikuSessionFill(sessionKey(session.user.sessionId), GENERATION_KEY, generation.slice(separator + 1), record, ttl)).pipe(
            Effect.asVoid,
            // Best effort: an unwritten record only means the next request asks Postgres again.
            Effect.ignore
          )
      })

    return SessionMirror.of({
      check,
      fill,
      revoked: (sessionIds) => (sessionIds.length === 0 ? Effect.void : tombstones(sessionIds))
    })
  })
)
