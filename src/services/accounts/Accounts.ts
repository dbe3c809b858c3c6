import { randomBytes } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { AccountLocked, Unauthorized } from "./AuthError.js"
import { Conflict, ValidationError } from "../platform/DomainError.js"
import { AppConfig } from "../platform/AppConfig.js"
import { sha256Base64url } from "../platform/digest.js"
import { normalizeEmail, parseEmail } from "./email.js"
import { DUMMY_HASH, hashPassword, passwordProblem, verifyPassword } from "./passwords.js"
import { LoginThrottle } from "./LoginThrottle.js"
import { type AccessClaims, makeTokens } from "./tokens.js"
import type { CurrentUserShape } from "./CurrentUser.js"
import type { LiveSession } from "./SessionMirror.js"
import { Ledger } from "../credits/Ledger.js"
import type { ProfileUpdate, Session, SessionTokens } from "./Session.js"
import { type Profile, profileOf, publicUser, type User } from "./User.js"
import { type UserChanges, UserRepository } from "./UserRepository.js"
import { SessionRepository } from "./SessionRepository.js"

export const WELCOME_CREDITS = 100

const newRefreshToken = () => randomBytes(32).toString("base64url")

const INVALID_CREDENTIALS = "Invalid email or password"
const UNAUTHORIZED = "Your session is missing, invalid or expired; sign in again"
const LOCKED = "Too many failed sign-in attempts; try again later"
const WRONG_CURRENT_PASSWORD = "The current password is not correct"
const EMAIL_TAKEN = "An account with this email already exists"

/**
 * Accounts and sessions: the rules (validation, the login lockout, password checks, tokens, what
 * revokes what); the users and sessions repositories hold the SQL. A JWT names a server-side session,
 * so logout and a password change revoke at once; refresh tokens rotate, and a reused one revokes its
 * session. Refresh tokens are stored as SHA-256 digests only.
 */
export class Accounts extends Effect.Service<Accounts>()("app/Accounts", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const sql = yield* SqlClient.SqlClient
    const users = yield* UserRepository
    const sessions = yield* SessionRepository
    const ledger = yield* Ledger
    const throttle = yield* LoginThrottle
    const tokens = makeTokens(config.auth.jwtSecret, config.auth.tokenTtl)
    // Made now, so the first login for an unknown email is not slower than the rest.
    yield* DUMMY_HASH

    const openSession = (user: User) =>
      Effect.gen(function*() {
        const refreshToken = newRefreshToken()
        const sessionId = yield* sessions.open({
          userId: user.id,
          refreshTokenHash: sha256Base64url(refreshToken),
          ttl: config.auth.sessionTtl
        })
        const token = yield* tokens.sign({ userId: user.id, sessionId })
        return { user: publicUser(user), token, refreshToken } satisfies Session
      })

    const validateEmail = (raw: string) => {
      const email = parseEmail(raw)
      return email !== undefined
        ? Effect.succeed(email)
        : Effect.fail(new ValidationError({ message: "Enter a valid email address", field: "email" }))
    }

    const emailTaken = () => Effect.fail(new Conflict({ message: EMAIL_TAKEN }))

    const register = Effect.fn("Accounts.register")(function*(input: { email: string; password: string; name?: string | undefined }) {
      const email = yield* validateEmail(input.email)
      const problem = passwordProblem(input.password)
      if (problem !== undefined) return yield* new ValidationError({ message: problem, field: "password" })
      const passwordHash = yield* hashPassword(input.password)
      const name = input.name?.trim() || null
      // The account, its welcome credit and its first session commit together.
      return yield* sql.withTransaction(
        Effect.gen(function*() {
          const user = yield* users.insert({ email, passwordHash, name }).pipe(Effect.catchTag("EmailTaken", emailTaken))
          const welcome = yield* ledger.credit({
            userId: user.id,
            amount: WELCOME_CREDITS,
            key: `welcome:${user.id}`,
            kind: "bonus",
            reason: "Welcome bonus"
          }).pipe(Effect.orDie)
          return yield* openSession({ ...user, balance: welcome.balanceAfter })
        })
      ).pipe(Effect.catchTag("SqlError", Effect.die))
    })

    const login = Effect.fn("Accounts.login")(function*(input: { email: string; password: string }, clientAddress: string) {
      // What is not an address cannot be an account: counted and answered like a wrong password.
      const email = parseEmail(input.email) ?? normalizeEmail(input.email)
      const reservation = yield* throttle.reserve(email, clientAddress)
      if (reservation.locked) return yield* new AccountLocked({ message: LOCKED, retryAfter: reservation.retryAfterSeconds })
      const found = yield* users.findByEmail(email)
      // The same work whether or not the account exists, so the answer and its timing say nothing.
      const storedHash = Option.isSome(found) ? found.value.passwordHash : yield* DUMMY_HASH
      const ok = yield* verifyPassword(input.password, storedHash)
      // A failed check keeps its reservation: that is the failure count.
      if (!ok || Option.isNone(found)) return yield* new Unauthorized({ message: INVALID_CREDENTIALS })
      yield* throttle.release(reservation)
      return yield* openSession(found.value)
    })

    const unauthorized = () => new Unauthorized({ message: UNAUTHORIZED })

    /** The claims of a valid access token (revocation is the session's business: see liveSession). */
    const verifyToken = (token: string): Effect.Effect<AccessClaims, Unauthorized> =>
      Effect.mapError(tokens.verify(token), unauthorized)

    /** The session the claims name, as Postgres holds it, if it is live and the user's. */
    const liveSession = (claims: AccessClaims): Effect.Effect<LiveSession, Unauthorized> =>
      Effect.flatMap(sessions.findLive(claims), Option.match({
        onNone: () => Effect.fail(unauthorized()),
        onSome: Effect.succeed
      }))

    /**
     * Verifies a bearer token and its session in Postgres. The auth middleware runs on every
     * request, so none of these has a span of its own (the request's span covers it).
     */
    const authenticate = (token: string): Effect.Effect<CurrentUserShape, Unauthorized> =>
      verifyToken(token).pipe(
        Effect.flatMap(liveSession),
        Effect.map((session) => session.user)
      )

    const logout = Effect.fn("Accounts.logout")(function*(user: CurrentUserShape) {
      yield* sessions.revoke(user.sessionId)
    })

    const refresh = Effect.fn("Accounts.refresh")(function*(refreshToken: string) {
      const presented = sha256Base64url(refreshToken)
      const next = newRefreshToken()
      // Rotation and retiring the old digest commit together. A concurrent use of the same token waits
      // on the session row, then finds the digest rotated away and takes the reuse path below.
      const rotated = yield* sessions.rotate({ presented, next: sha256Base64url(next) })
      if (Option.isNone(rotated)) {
        // A retired token presented again means two parties hold this session's tokens (theft
        // detection, OAuth 2.0 Security BCP 4.14): the session ends, with its access tokens.
        const revoked = yield* sessions.revokeRetired(presented)
        if (Option.isSome(revoked)) yield* Effect.logWarning("refresh token reused; session revoked", { sessionId: revoked.value })
        return yield* new Unauthorized({ message: UNAUTHORIZED })
      }
      const token = yield* tokens.sign(rotated.value)
      return { token, refreshToken: next } satisfies SessionTokens
    })

    const profile = Effect.fn("Accounts.profile")(function*(user: CurrentUserShape) {
      const found = yield* users.findById(user.id)
      if (Option.isNone(found)) return yield* new Unauthorized({ message: UNAUTHORIZED })
      return profileOf(found.value) satisfies Profile
    })

    const updateProfile = Effect.fn("Accounts.updateProfile")(function*(
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
          const locked = yield* users.lockForUpdate(user.id)
          const live = yield* sessions.isLive(user.sessionId)
          if (Option.isNone(locked) || !live) return yield* new Unauthorized({ message: UNAUTHORIZED })
          const current = locked.value
          const emailChanges = newEmail !== undefined && newEmail !== current.email
          const credentialsChange = newPassword !== undefined || emailChanges
          if (credentialsChange) {
            // Changing how one signs in needs the current password, checked under the login lockout.
            if (input.currentPassword === undefined) return yield* new Unauthorized({ message: WRONG_CURRENT_PASSWORD })
            const reservation = yield* throttle.reserve(current.email, clientAddress)
            if (reservation.locked) return yield* new AccountLocked({ message: LOCKED, retryAfter: reservation.retryAfterSeconds })
            if (!(yield* verifyPassword(input.currentPassword, current.passwordHash))) {
              return yield* new Unauthorized({ message: WRONG_CURRENT_PASSWORD })
            }
            yield* throttle.release(reservation)
          }
          // Only what the request changes is written.
          const changes: UserChanges = {
            ...(emailChanges ? { email: newEmail } : {}),
            ...(input.name !== undefined ? { name: input.name.trim() || null } : {}),
            ...(newPassword !== undefined ? { passwordHash: yield* hashPassword(newPassword) } : {})
          }
          if (Object.keys(changes).length === 0) return { user: publicUser(current) } satisfies ProfileUpdate
          const updated = yield* users.update(user.id, changes).pipe(Effect.catchTag("EmailTaken", emailTaken))
          if (!credentialsChange) return { user: publicUser(updated) } satisfies ProfileUpdate
          // New credentials: every session ends, including this one, which is replaced.
          yield* sessions.revokeAllOf(user.id)
          const session = yield* openSession(updated)
          return { user: session.user, token: session.token, refreshToken: session.refreshToken } satisfies ProfileUpdate
        })
      ).pipe(Effect.catchTag("SqlError", Effect.die))
    })

    return { register, login, authenticate, verifyToken, liveSession, logout, refresh, profile, updateProfile }
  }),
  dependencies: [LoginThrottle.Default]
}) {}
