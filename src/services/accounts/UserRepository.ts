import { Context, Data, type Effect, type Option } from "effect"
import type { User } from "./User.js"

/** Another account already has this email (the unique index decided, so a race cannot slip past it). */
export class EmailTaken extends Data.TaggedError("EmailTaken")<{ readonly email: string }> {
  override get message() {
    return "an account with this email already exists"
  }
}

/** The fields a profile change writes; an absent one keeps its value. */
export interface UserChanges {
  readonly email?: string | undefined
  readonly name?: string | null | undefined
  readonly passwordHash?: string | undefined
}

/**
 * Stored accounts. Emails arrive normalised (see email.ts); the store does not normalise them again.
 * Storage failures are defects: no caller can do better than the 500 they become.
 */
export interface UserRepositoryShape {
  readonly findByEmail: (email: string) => Effect.Effect<Option.Option<User>>
  readonly findById: (id: string) => Effect.Effect<Option.Option<User>>
  /** A new account with a zero balance and the `user` role. */
  readonly insert: (user: { readonly email: string; readonly passwordHash: string; readonly name: string | null }) => Effect.Effect<User, EmailTaken>
  /**
   * Reads the account and locks its row until the caller's transaction ends, so concurrent changes of
   * one account run one after another, each seeing what the previous one wrote.
   */
  readonly lockForUpdate: (id: string) => Effect.Effect<Option.Option<User>>
  /** Writes only the given fields (and the update time); the account must exist. */
  readonly update: (id: string, changes: UserChanges) => Effect.Effect<User, EmailTaken>
}

export class UserRepository extends Context.Tag("app/UserRepository")<UserRepository, UserRepositoryShape>() {}
