import { Schema } from "effect"

export const UserRole = Schema.Literal("user", "admin")
export type UserRole = typeof UserRole.Type

/** A user as the web app sees it in a session and after a profile change. */
export const PublicUser = Schema.Struct({
  id: Schema.String,
  email: Schema.String,
  name: Schema.NullOr(Schema.String),
  creditBalance: Schema.Number
}).annotations({ identifier: "PublicUser" })
export interface PublicUser extends Schema.Schema.Type<typeof PublicUser> {}

/** The caller's own profile: the public user with the role and when the account was created (ISO 8601). */
export const Profile = Schema.Struct({
  ...PublicUser.fields,
  role: UserRole,
  createdAt: Schema.String
}).annotations({ identifier: "Profile" })
export interface Profile extends Schema.Schema.Type<typeof Profile> {}

/** A stored account as the user repository returns it. The password hash never leaves the accounts service. */
export interface User {
  readonly id: string
  readonly email: string
  readonly name: string | null
  readonly role: UserRole
  readonly tags: ReadonlyArray<string>
  readonly balance: number
  readonly passwordHash: string
  readonly createdAt: Date
}

export const publicUser = (user: User): PublicUser => ({
  id: user.id,
  email: user.email,
  name: user.name,
  creditBalance: user.balance
})

export const profileOf = (user: User): Profile => ({
  ...publicUser(user),
  role: user.role,
  createdAt: user.createdAt.toISOString()
})
