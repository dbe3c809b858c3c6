import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Logger, LogLevel, Option } from "effect"
import pg from "pg"
import { inject } from "vitest"
import { SessionRepositoryLive } from "../../src/layers/accounts/SessionRepositoryLive.js"
import { UserRepositoryLive } from "../../src/layers/accounts/UserRepositoryLive.js"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { DatabaseLive } from "../../src/layers/platform/DatabaseLive.js"
import { SESSION_REVOKED_CHANNEL, SessionMirror } from "../../src/services/accounts/SessionMirror.js"
import { SessionRepository } from "../../src/services/accounts/SessionRepository.js"
import { UserRepository } from "../../src/services/accounts/UserRepository.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { sqlStateOf } from "../../src/services/platform/errorCode.js"

/** Every session id the repository tombstoned in its mirror, in order. */
const tombstoned: Array<string> = []
const RecordingMirror = Layer.succeed(SessionMirror, {
  ...SessionMirror.none,
  revoked: (ids) => Effect.sync(() => void tombstoned.push(...ids))
})

/** The Postgres repositories of accounts, against the real database. */
const RepositoriesTest = Layer.mergeAll(UserRepositoryLive, SessionRepositoryLive).pipe(
  Layer.provide(RecordingMirror),
  Layer.provideMerge(DatabaseLive),
  Layer.provide(Layer.effect(AppConfig, appConfigFrom({ DATABASE_URL: inject("databaseUrl"), LOG_LEVEL: "silent" }))),
  Layer.provide(Logger.minimumLogLevel(LogLevel.None))
)

const freshEmail = () => `repo-${randomUUID()}@test.local`

const newUser = Effect.flatMap(UserRepository, (users) => users.insert({ email: freshEmail(), passwordHash: "scrypt$x", name: null }))

const openSession = (userId: string, refreshTokenHash: string = randomUUID()) =>
  Effect.flatMap(SessionRepository, (sessions) => sessions.open({ userId, refreshTokenHash, ttl: Duration.hours(1) }))

layer(RepositoriesTest)("UserRepositoryLive", (it) => {
  it.effect("insert answers EmailTaken for an email another account has, and stores nothing", () =>
    Effect.gen(function*() {
      const users = yield* UserRepository
      const first = yield* users.insert({ email: freshEmail(), passwordHash: "scrypt$a", name: "Ana" })
      expect(first).toMatchObject({ name: "Ana", role: "user", tags: [], balance: 0, passwordHash: "scrypt$a" })
      const again = yield* Effect.flip(users.insert({ email: first.email, passwordHash: "scrypt$b", name: "Budi" }))
      expect(again._tag).toBe("EmailTaken")
      expect(yield* users.findByEmail(first.email)).toEqual(Option.some(first))
    }))

  it.effect("update writes only the given fields, and answers EmailTaken for a taken email", () =>
    Effect.gen(function*() {
      const users = yield* UserRepository
      const ana = yield* newUser
      const budi = yield* newUser
      const renamed = yield* users.update(ana.id, { name: "Ana" })
      expect(renamed).toEqual({ ...ana, name: "Ana" })
      const taken = yield* Effect.flip(users.update(ana.id, { email: budi.email, passwordHash: "scrypt$new" }))
      expect(taken._tag).toBe("EmailTaken")
      // The refused statement changed nothing, not even the other field.
      expect(yield* users.findById(ana.id)).toEqual(Option.some(renamed))
    }))

  it.effect("lockForUpdate holds the row lock until the caller's transaction ends", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const users = yield* UserRepository
      const user = yield* newUser
      const probe = new pg.Pool({ connectionString: inject("databaseUrl"), max: 1 })
      const tryLock = Effect.tryPromise(() => probe.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE NOWAIT", [user.id]))
      const inside = yield* sql.withTransaction(
        Effect.zipRight(users.lockForUpdate(user.id), Effect.flip(tryLock))
      )
      expect(sqlStateOf(inside)).toBe("55P03") // lock_not_available
      expect((yield* tryLock).rowCount).toBe(1)
      yield* Effect.promise(() => probe.end())
    }))
})

layer(RepositoriesTest)("SessionRepositoryLive", (it) => {
  it.effect("every revocation notifies its session ids at commit and tombstones them in the mirror", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionRepository
      const user = yield* newUser
      const [a, b] = [yield* openSession(user.id), yield* openSession(user.id)]
      const digest = `retired-${user.id}`
      const c = yield* openSession(user.id, digest)
      const listener = new pg.Client({ connectionString: inject("databaseUrl") })
      const notified: Array<string> = []
      listener.on("notification", (m) => void (m.channel === SESSION_REVOKED_CHANNEL && notified.push(m.payload ?? "")))
      yield* Effect.promise(() => listener.connect().then(() => listener.query(`LISTEN ${SESSION_REVOKED_CHANNEL}`)))
      tombstoned.length = 0
      yield* sessions.revoke(a)
      expect(tombstoned).toEqual([a])
      // Revoked already: tombstoned again all the same, a mirror may have missed the first.
      yield* sessions.revoke(a)
      expect(tombstoned).toEqual([a, a])
      yield* sessions.rotate({ presented: digest, next: `next-${user.id}` })
      tombstoned.length = 0
      expect(yield* sessions.revokeRetired(digest)).toEqual(Option.some(c))
      expect(tombstoned).toEqual([c])
      tombstoned.length = 0
      yield* sessions.revokeAllOf(user.id)
      expect(tombstoned).toEqual([b])
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 200)))
      yield* Effect.promise(() => listener.end())
      // Other test files revoke sessions in the same database: only this user's are looked at.
      expect(notified.filter((id) => [a, b, c].includes(id)).sort()).toEqual([a, b, c].sort())
    }))

  it.effect("authenticate finds a live session only for its own user; revoke ends it", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionRepository
      const user = yield* newUser
      const other = yield* newUser
      const sessionId = yield* openSession(user.id)
      expect(yield* sessions.authenticate({ sessionId, userId: user.id })).toEqual(
        Option.some({ id: user.id, email: user.email, role: "user", tags: [], sessionId })
      )
      expect(yield* sessions.authenticate({ sessionId, userId: other.id })).toEqual(Option.none())
      expect(yield* sessions.isLive(sessionId)).toBe(true)
      yield* sessions.revoke(sessionId)
      expect(yield* sessions.isLive(sessionId)).toBe(false)
      expect(yield* sessions.authenticate({ sessionId, userId: user.id })).toEqual(Option.none())
    }))

  it.effect("rotate swaps the digest and retires the old one in the same statement; the retired one rotates no more", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const sessions = yield* SessionRepository
      const user = yield* newUser
      const [d1, d2, d3] = [`1-${user.id}`, `2-${user.id}`, `3-${user.id}`]
      const sessionId = yield* openSession(user.id, d1)
      expect(yield* sessions.rotate({ presented: d1, next: d2 })).toEqual(Option.some({ sessionId, userId: user.id }))
      const stored = yield* sql<{ refresh_token_hash: string; retired: string | null }>`
        SELECT s.refresh_token_hash, r.token_hash AS retired
        FROM sessions s LEFT JOIN retired_refresh_tokens r ON r.session_id = s.id WHERE s.id = ${sessionId}`
      expect(stored).toEqual([{ refresh_token_hash: d2, retired: d1 }])
      expect(yield* sessions.rotate({ presented: d1, next: d3 })).toEqual(Option.none())
      // A rotation that finds no live session retires nothing.
      const retired = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM retired_refresh_tokens WHERE token_hash = ${d1} OR session_id = ${sessionId}`
      expect(retired).toEqual([{ n: 1 }])
    }))

  it.effect("revokeRetired ends the session a retired digest came from, once; revokeAllOf ends every session of a user", () =>
    Effect.gen(function*() {
      const sessions = yield* SessionRepository
      const user = yield* newUser
      const first = yield* openSession(user.id, `a-${user.id}`)
      const second = yield* openSession(user.id)
      yield* sessions.rotate({ presented: `a-${user.id}`, next: `b-${user.id}` })
      expect(yield* sessions.revokeRetired(`b-${user.id}`)).toEqual(Option.none())
      expect(yield* sessions.revokeRetired(`a-${user.id}`)).toEqual(Option.some(first))
      expect(yield* sessions.revokeRetired(`a-${user.id}`)).toEqual(Option.none())
      expect(yield* sessions.isLive(second)).toBe(true)
      yield* sessions.revokeAllOf(user.id)
      expect(yield* sessions.isLive(second)).toBe(false)
    }))
})
