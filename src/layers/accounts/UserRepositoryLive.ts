import { SqlClient, type SqlError } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import type { User } from "../../services/accounts/User.js"
import { EmailTaken, UserRepository } from "../../services/accounts/UserRepository.js"
import { sqlStateOf } from "../../services/platform/errorCode.js"

interface UserRow {
  readonly id: string
  readonly email: string
  readonly name: string | null
  readonly role: User["role"]
  readonly tags: ReadonlyArray<string>
  /** int8, read as a string by pg; balances are held to the safe-integer range by a CHECK. */
  readonly balance: string
  readonly password_hash: string
  readonly created_at: Date
}

const toUser = (row: UserRow): User => ({
  id: row.id,
  email: row.email,
  name: row.name,
  role: row.role,
  tags: row.tags,
  balance: Number(row.balance),
  passwordHash: row.password_hash,
  createdAt: row.created_at
})

const first = (rows: ReadonlyArray<UserRow>) => Option.map(Option.fromNullable(rows[0]), toUser)

/** Accounts in Postgres (`users`). Owns no resource: statements run on the pool DatabaseLive owns. */
export const UserRepositoryLive = Layer.effect(
  UserRepository,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const columns = sql`id, email, name, role, tags, balance, password_hash, created_at`
    /** The unique index on email refused the write. */
    const emailTaken = (email: string) => (error: SqlError.SqlError) =>
      sqlStateOf(error) === "23505" ? Effect.fail(new EmailTaken({ email })) : Effect.die(error)

    return UserRepository.of({
      findByEmail: (email) => sql<UserRow>`SELECT ${columns} FROM users WHERE email = ${email}`.pipe(Effect.map(first), Effect.orDie),
      findById: (id) => sql<UserRow>`SELECT ${columns} FROM users WHERE id = ${id}`.pipe(Effect.map(first), Effect.orDie),
      insert: ({ email, name, passwordHash }) =>
        sql<UserRow>`
          INSERT INTO users (email, password_hash, name) VALUES (${email}, ${passwordHash}, ${name})
          ON CONFLICT (email) DO NOTHING
          RETURNING ${columns}`.pipe(
          Effect.orDie,
          Effect.flatMap((rows) => Option.match(first(rows), { onNone: () => Effect.fail(new EmailTaken({ email })), onSome: Effect.succeed }))
        ),
      lockForUpdate: (id) => sql<UserRow>`SELECT ${columns} FROM users WHERE id = ${id} FOR UPDATE`.pipe(Effect.map(first), Effect.orDie),
      update: (id, changes) => {
        const set: Record<string, string | null> = {}
        if (changes.email !== undefined) set["email"] = changes.email
        if (changes.name !== undefined) set["name"] = changes.name
        if (changes.passwordHash !== undefined) set["password_hash"] = changes.passwordHash
        const statement = Object.keys(set).length === 0
          ? sql<UserRow>`SELECT ${columns} FROM users WHERE id = ${id}`
          : sql<UserRow>`
          UPDATE users SET ${sql.update(set)}, updated_at = now()
          WHERE id = ${id}
          RETURNING ${columns}`
        return statement.pipe(
          Effect.catchTag("SqlError", emailTaken(changes.email ?? "")),
          Effect.flatMap((rows) => Option.match(first(rows), { onNone: () => Effect.dieMessage(`no user ${id} to update`), onSome: Effect.succeed }))
        )
      }
    })
  })
)
