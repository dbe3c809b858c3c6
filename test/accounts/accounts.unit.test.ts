import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Logger, LogLevel, Option, Predicate } from "effect"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { Accounts } from "../../src/services/accounts/Accounts.js"
import type { CurrentUserShape } from "../../src/services/accounts/CurrentUser.js"
import { LoginThrottle } from "../../src/services/accounts/LoginThrottle.js"
import { hashPassword } from "../../src/services/accounts/passwords.js"
import { SessionRepository, type SessionRepositoryShape } from "../../src/services/accounts/SessionRepository.js"
import type { User } from "../../src/services/accounts/User.js"
import { EmailTaken, UserRepository, type UserRepositoryShape } from "../../src/services/accounts/UserRepository.js"
import { Ledger } from "../../src/services/credits/Ledger.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { partialLayer } from "../support/double.js"

/**
 * The account rules without a database or Redis: Accounts over partial doubles of its repositories,
 * the login throttle and the ledger. A member a test does not state dies when used, so each test
 * also proves what the rule never touches.
 */

const PASSWORD = "Correct-Horse-42"
const passwordHash = Effect.runPromise(hashPassword(PASSWORD))

const userWith = async (fields: Partial<User> = {}): Promise<User> => ({
  id: "00000000-0000-4000-8000-000000000001",
  email: "ana@example.com",
  name: "Ana",
  role: "user",
  tags: [],
  balance: 40,
  passwordHash: await passwordHash,
  createdAt: new Date("2026-01-02T03:04:05.000Z"),
  ...fields
})

const caller: CurrentUserShape = {
  id: "00000000-0000-4000-8000-000000000001",
  email: "ana@example.com",
  role: "user",
  tags: [],
  sessionId: "00000000-0000-4000-8000-0000000000aa"
}

/** The transaction boundary stays in Accounts; here it only runs the work. */
const NoDatabase = partialLayer(SqlClient.SqlClient, { withTransaction: (effect) => effect })
const Config = Layer.effect(AppConfig, appConfigFrom({ JWT_SECRET: "t3st-Xq9mZ2Lp4Wn7Rt8Ys1Kd3Vb6Hc0Fg5Ej", LOG_LEVEL: "silent" }))

const accountsOver = (doubles: {
  readonly users?: Partial<UserRepositoryShape>
  readonly sessions?: Partial<SessionRepositoryShape>
  readonly throttle?: Partial<LoginThrottle>
  readonly ledger?: Partial<Ledger>
}) =>
  Accounts.DefaultWithoutDependencies.pipe(
    Layer.provide([
      partialLayer(UserRepository, doubles.users ?? {}),
      partialLayer(SessionRepository, doubles.sessions ?? {}),
      partialLayer(LoginThrottle, doubles.throttle ?? {}),
      partialLayer(Ledger, doubles.ledger ?? {}),
      NoDatabase,
      Config
    ])
  )

const run = <A, E, LE>(layer: Layer.Layer<Accounts, LE>, use: (accounts: Accounts) => Effect.Effect<A, E>) =>
  Effect.runPromiseExit(Effect.flatMap(Accounts, use).pipe(Effect.provide(layer), Effect.provide(Logger.minimumLogLevel(LogLevel.None))))

/** The failure's tag, or the whole cause when it died (a double's missing member names itself there). */
const failureTag = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.match(exit, {
    onSuccess: () => "succeeded",
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onNone: () => Cause.pretty(cause),
        onSome: (error) => Predicate.hasProperty(error, "_tag") ? String(error._tag) : String(error)
      })
  })

describe("Accounts over swapped repositories", () => {
  it("a locked email never reaches the account lookup or the password check", async () => {
    // No findByEmail in the double: looking the account up (to check its password) would die.
    const exit = await run(
      accountsOver({ throttle: { reserve: () => Effect.succeed({ locked: true, retryAfterSeconds: 7 }) } }),
      (accounts) => accounts.login({ email: "ana@example.com", password: PASSWORD }, "203.0.113.9")
    )
    expect(exit).toEqual(Exit.fail(expect.objectContaining({ _tag: "AccountLocked", retryAfter: 7 })))
  })

  it("updateProfile with nothing that changes writes nothing: no update, no session change, no password asked", async () => {
    const user = await userWith()
    const layer = accountsOver({
      users: { lockForUpdate: () => Effect.succeed(Option.some(user)) },
      sessions: { isLive: () => Effect.succeed(true) }
    })
    // The current email (in another case) is no change, so neither the current password nor the
    // lockout is needed; the double has no update, revokeAllOf, open or throttle.
    for (const input of [{}, { email: " ANA@Example.com " }]) {
      const exit = await run(layer, (accounts) => accounts.updateProfile(caller, input, "203.0.113.9"))
      expect(exit).toEqual(Exit.succeed({ user: { id: user.id, email: user.email, name: "Ana", creditBalance: 40 } }))
    }
  })

  it("a new password without the current one is refused before the lockout counts anything", async () => {
    const user = await userWith()
    const exit = await run(
      accountsOver({
        users: { lockForUpdate: () => Effect.succeed(Option.some(user)) },
        sessions: { isLive: () => Effect.succeed(true) }
      }),
      (accounts) => accounts.updateProfile(caller, { newPassword: "Another-Secret-77" }, "203.0.113.9")
    )
    expect(failureTag(exit)).toBe("Unauthorized")
  })

  it("a profile change on a revoked session is refused after the row lock, and writes nothing", async () => {
    const user = await userWith()
    const exit = await run(
      accountsOver({
        users: { lockForUpdate: () => Effect.succeed(Option.some(user)) },
        sessions: { isLive: () => Effect.succeed(false) }
      }),
      (accounts) => accounts.updateProfile(caller, { name: "Budi" }, "203.0.113.9")
    )
    expect(failureTag(exit)).toBe("Unauthorized")
  })

  it("registering a taken email is a Conflict, and no welcome credit is asked for", async () => {
    // No credit in the ledger double: granting the welcome bonus would die.
    const exit = await run(
      accountsOver({ users: { insert: ({ email }) => Effect.fail(new EmailTaken({ email })) } }),
      (accounts) => accounts.register({ email: "Ana@Example.com", password: PASSWORD })
    )
    expect(exit).toEqual(Exit.fail(expect.objectContaining({ _tag: "Conflict", message: "An account with this email already exists" })))
  })

  it("a refresh token that no live session holds revokes the session it was retired from", async () => {
    const revoked: Array<string> = []
    const exit = await run(
      accountsOver({
        sessions: {
          rotate: () => Effect.succeed(Option.none()),
          revokeRetired: (digest) => Effect.sync(() => revoked.push(digest)).pipe(Effect.as(Option.some(caller.sessionId)))
        }
      }),
      (accounts) => accounts.refresh("reused-token")
    )
    expect(failureTag(exit)).toBe("Unauthorized")
    // The token is looked up by its digest, never stored or compared in the clear.
    expect(revoked).toEqual(["DWY6IsvdV5WnHl5zzzE8I5bbp63ERIN1BKWGOkbI7iY"])
  })
})
