import { createHash, randomBytes } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Option } from "effect"
import { AccountLocked, Unauthorized } from "./AuthError.js"
import { Conflict, ValidationError } from "../platform/DomainError.js"
import { AppConfig } from "../platform/AppConfig.js"
import { normalizeEmail, parseEmail } from "./email.js"
import { DUMMY_HASH, hashPassword, passwordProblem, verifyPassword } from "./passwords.js"
import { makeLoginThrottle } from "./LoginThrottle.js"
import { makeTokens } from "./tokens.js"
import type { CurrentUserShape, UserRole } from "./CurrentUser.js"
import { Ledger } from "../credits/Ledger.js"
import { Redis } from "../platform/Redis.js"

export const WELCOME_CREDITS = 100

export interface PublicUser {
  readonly id: string
  readonly email: string
  readonly name: string | null
  readonly creditBalance: number
}

export interface Profile extends PublicUser {
  readonly role: UserRole
  readonly createdAt: string
}

export interface Session {
  readonly user: PublicUser
  readonly token: string
  readonly refreshToken: string
}

interface UserRow {
  readonly id: string
  readonly email: string
  readonly name: string | null
  readonly role: UserRole
  readonly tags: ReadonlyArray<string>
  readonly balance: string
  readonly password_hash: string
  readonly created_at: Date
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url")
const newRefreshToken = () => randomBytes(32).toString("base64url")

const publicUser = (row: UserRow): PublicUser => ({ id: row.id, email: row.email, name: row.name, creditBalance: Number(row.balance) })

const INVALID_CREDENTIALS = "Invalid email or password"
const UNAUTHORIZED = "Your session is missing, invalid or expired; sign in again"
const LOCKED = "Too many failed sign-in attempts; try again later"
const WRONG_CURRENT_PASSWORD = "The current password is not correct"

/**
 * Accounts and sessions. A JWT names a server-side session, so logout and a password change
 * revoke at once; refresh tokens rotate, and a reused one revokes its session.
 */
export class Auth extends Effect.Service<Auth>()("app/Auth", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const sql = yield* SqlClient.SqlClient
    const redis = yield* Redis
    const ledger = yield* Ledger
    const tokens = makeTokens(config.auth.jwtSecret, config.auth.tokenTtl)
    const throttle = makeLoginThrottle(redis, config.auth.lockout)
    const sessionSeconds = Math.floor(Duration.toSeconds(config.auth.sessionTtl))
    // Made now, so the first login for an unknown email is not slower than the rest.
    yield* DUMMY_HASH

    const findByEmail = (email: string) =>
      sql<UserRow>`SELECT id, email, name, role, tags, balance, password_hash, created_at FROM users WHERE email = ${email}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0])),
        Effect.orDie
      )
    const findById = (id: string) =>
      sql<UserRow>`SELECT id, email, name, role, tags, balance, password_hash, created_at FROM users WHERE id = ${id}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0])),
        Effect.orDie
      )

    const openSession = (user: UserRow) =>
      Effect.gen(function*() {
        const refreshToken = newRefreshToken()
        const [session] = yield* sql<{ id: string }>`
          INSERT INTO sessions (user_id, refresh_token_hash, expires_at)
          VALUES (${user.id}, ${sha256(refreshToken)}, now() + make_interval(secs => ${sessionSeconds}))
          RETURNING id`.pipe(Effect.orDie)
        const token = yield* tokens.sign({ userId: user.id, sessionId: session!.id })
        return { user: publicUser(user), token, refreshToken } satisfies Session
      })

    const validateEmail = (raw: string) => {
      const email = parseEmail(raw)
      return email !== undefined
        ? Effect.succeed(email)
        : Effect.fail(new ValidationError({ message: "Enter a valid email address", field: "email" }))
    }

    const register = Effect.fn("Auth.register")(function*(input: { email: string; password: string; name?: string | undefined }) {
      const email = yield* validateEmail(input.email)
      const problem = passwordProblem(input.password)
      if (problem !== undefined) return yield* new ValidationError({ message: problem, field: "password" })
      const passwordHash = yield* hashPassword(input.password)
      const name = input.name?.trim() || null
      return yield* sql.withTransaction(
        Effect.gen(function*() {
          const inserted = yield* sql<UserRow>`
            INSERT INTO users (email, password_hash, name) VALUES (${email}, ${passwordHash}, ${name})
            ON CONFLICT (email) DO NOTHING
            RETURNING id, email, name, role, tags, balance, password_hash, created_at`.pipe(Effect.orDie)
          const user = inserted[0]
          if (user === undefined) return yield* new Conflict({ message: "An account with this email already exists" })
          const welcome = yield* ledger.credit({
            userId: user.id,
            amount: WELCOME_CREDITS,
            key: `welcome:${user.id}`,
            kind: "bonus",
            reason: "Welcome bonus"
          }).pipe(Effect.orDie)
          return yield* openSession({ ...user, balance: String(welcome.balanceAfter) })
        })
      ).pipe(Effect.catchTag("SqlError", Effect.die))
    })

    const login = Effect.fn("Auth.login")(function*(input: { email: string; password: string }, clientAddress: string) {
      // What is not an address cannot be an account: counted and answered like a wrong password.
      const email = parseEmail(input.email) ?? normalizeEmail(input.email)
      const reservation = yield* throttle.reserve(email, clientAddress)
      if (reservation.locked) return yield* new AccountLocked({ message: LOCKED, retryAfter: reservation.retryAfterSeconds })
      const found = yield* findByEmail(email)
      // The same work whether or not the account exists, so the answer and its timing say nothing.
      const storedHash = Option.isSome(found) ? found.value.password_hash : yield* DUMMY_HASH
      const ok = yield* verifyPassword(input.password, storedHash)
      // A failed check keeps its reservation: that is the failure count.
      if (!ok || Option.isNone(found)) return yield* new Unauthorized({ message: INVALID_CREDENTIALS })
      yield* throttle.release(reservation)
      return yield* openSession(found.value)
    })

    /** Verifies a bearer token and its session; the auth middleware calls this on every request. */
    const authenticate = (token: string): Effect.Effect<CurrentUserShape, Unauthorized> =>
      tokens.verify(token).pipe(
        Effect.flatMap((claims) =>
          sql<UserRow & { session_id: string }>`
            SELECT u.id, u.email, u.name, u.role, u.tags, u.balance, u.password_hash, u.created_at, s.id AS session_id
            FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.id = ${claims.sessionId} AND s.user_id = ${claims.userId}
              AND s.revoked_at IS NULL AND s.expires_at > now()`.pipe(Effect.orDie)
        ),
        Effect.flatMap((rows) => {
          const row = rows[0]
          return row === undefined
            ? Effect.fail(new Unauthorized({ message: UNAUTHORIZED }))
            : Effect.succeed({ id: row.id, email: row.email, role: row.role, tags: row.tags, sessionId: row.session_id })
        }),
        Effect.catchTag("InvalidToken", () => Effect.fail(new Unauthorized({ message: UNAUTHORIZED })))
      )

    const logout = Effect.fn("Auth.logout")(function*(user: CurrentUserShape) {
      yield* sql`UPDATE sessions SET revoked_at = now() WHERE id = ${user.sessionId} AND revoked_at IS NULL`.pipe(Effect.orDie)
    })

    const refresh = Effect.fn("Auth.refresh")(function*(refreshToken: string) {
      const hash = sha256(refreshToken)
      const next = newRefreshToken()
      // Rotation and retiring the old hash commit together. A concurrent use of the same token waits
      // on the session row, then finds the hash rotated away and takes the reuse path below.
      const rotated = yield* sql<{ id: string; user_id: string }>`
        WITH rotated AS (
          UPDATE sessions SET refresh_token_hash = ${sha256(next)}
          WHERE refresh_token_hash = ${hash} AND revoked_at IS NULL AND expires_at > now()
          RETURNING id, user_id
        ), retired AS (
          INSERT INTO retired_refresh_tokens (token_hash, session_id) SELECT ${hash}, id FROM rotated
        )
        SELECT id, user_id FROM rotated`.pipe(Effect.orDie)
      const session = rotated[0]
      if (session === undefined) {
        // A retired token presented again means two parties hold this session's tokens (theft
        // detection, OAuth 2.0 Security BCP 4.14): the session ends, with its access tokens.
        const revoked = yield* sql<{ id: string }>`
          UPDATE sessions SET revoked_at = now()
          WHERE id = (SELECT session_id FROM retired_refresh_tokens WHERE token_hash = ${hash}) AND revoked_at IS NULL
          RETURNING id`.pipe(Effect.orDie)
        if (revoked[0] !== undefined) yield* Effect.logWarning("refresh token reused; session revoked", { sessionId: revoked[0].id })
        return yield* new Unauthorized({ message: UNAUTHORIZED })
      }
      const token = yield* tokens.sign({ userId: session.user_id, sessionId: session.id })
      return { token, refreshToken: next }
    })

    const profile = Effect.fn("Auth.profile")(function*(user: CurrentUserShape) {
      const row = yield* findById(user.id)
      if (Option.isNone(row)) return yield* new Unauthorized({ message: UNAUTHORIZED })
      return { ...publicUser(row.value), role: row.value.role, createdAt: row.value.created_at.toISOString() } satisfies Profile
    })

    const updateProfile = Effect.fn("Auth.updateProfile")(function*(
      user: CurrentUserShape,
      input: { name?: string | undefined; email?: string | undefined; currentPassword?: string | undefined; newPassword?: string | undefined },
      clientAddress: string
    ) {
      const newEmail = input.email === undefined ? undefined : yield* validateEmail(input.email)
      const newPassword = input.newPassword !== undefined && input.newPassword !== "" ? input.newPassword : undefined
      if (newPassword !== undefined) {
        const problem = passwordProblem(newPassword)
        if (problem !== undefined) return yield* new ValidationError({ message: problem, field: "newPassword" })
      }
      return yield* sql.withTransaction(
        Effect.gen(function*() {
          // The row lock orders concurrent updates of one account: each one checks its session and
          // the current password against the row as the previous update left it, so a request
          // authorised by a credential that a concurrent change replaced fails instead of undoing it.
          const row = (yield* sql<UserRow>`
            SELECT id, email, name, role, tags, balance, password_hash, created_at FROM users
            WHERE id = ${user.id} FOR UPDATE`.pipe(Effect.orDie))[0]
          const live = yield* sql`
            SELECT 1 FROM sessions WHERE id = ${user.sessionId} AND revoked_at IS NULL AND expires_at > now()`.pipe(Effect.orDie)
          if (row === undefined || live.length === 0) return yield* new Unauthorized({ message: UNAUTHORIZED })
          const emailChanges = newEmail !== undefined && newEmail !== row.email
          const credentialsChange = newPassword !== undefined || emailChanges
          if (credentialsChange) {
            // Changing how one signs in needs the current password, checked under the login lockout.
            if (input.currentPassword === undefined) return yield* new Unauthorized({ message: WRONG_CURRENT_PASSWORD })
            const reservation = yield* throttle.reserve(row.email, clientAddress)
            if (reservation.locked) return yield* new AccountLocked({ message: LOCKED, retryAfter: reservation.retryAfterSeconds })
            if (!(yield* verifyPassword(input.currentPassword, row.password_hash))) {
              return yield* new Unauthorized({ message: WRONG_CURRENT_PASSWORD })
            }
            yield* throttle.release(reservation)
          }
          // Only what the request changes is written.
          const changes: Record<string, string | null> = {}
          if (emailChanges) changes["email"] = newEmail
          if (input.name !== undefined) changes["name"] = input.name.trim() || null
          if (newPassword !== undefined) changes["password_hash"] = yield* hashPassword(newPassword)
          if (Object.keys(changes).length === 0) return { user: publicUser(row) }
          const updated = yield* sql<UserRow>`
            UPDATE users SET ${sql.update(changes)}, updated_at = now()
            WHERE id = ${user.id}
            RETURNING id, email, name, role, tags, balance, password_hash, created_at`.pipe(
            Effect.catchTag("SqlError", (error) =>
              (error.cause as { code?: string } | undefined)?.code === "23505"
                ? Effect.fail(new Conflict({ message: "An account with this email already exists" }))
                : Effect.die(error))
          )
          const next = updated[0]!
          if (!credentialsChange) return { user: publicUser(next) }
          // New credentials: every session ends, including this one, which is replaced.
          yield* sql`UPDATE sessions SET revoked_at = now() WHERE user_id = ${user.id} AND revoked_at IS NULL`.pipe(Effect.orDie)
          const session = yield* openSession(next)
          return { user: session.user, token: session.token, refreshToken: session.refreshToken }
        })
      ).pipe(Effect.catchTag("SqlError", Effect.die))
    })

    return { register, login, authenticate, logout, refresh, profile, updateProfile }
  })
}) {}
