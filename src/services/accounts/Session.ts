import { Schema } from "effect"
import { PublicUser } from "./User.js"

/** The tokens of a session: a short-lived access token (JWT) and the rotating refresh token. */
export const SessionTokens = Schema.Struct({ token: Schema.String, refreshToken: Schema.String })
export interface SessionTokens extends Schema.Schema.Type<typeof SessionTokens> {}

/** A session just opened (register, login, a credentials change), with its user. */
export const Session = Schema.Struct({ user: PublicUser, ...SessionTokens.fields })
export interface Session extends Schema.Schema.Type<typeof Session> {}

/** What a profile update answers: the user, and a new session's tokens when the credentials changed. */
export const ProfileUpdate = Schema.Struct({
  user: PublicUser,
  token: Schema.optional(Schema.String),
  refreshToken: Schema.optional(Schema.String)
})
export interface ProfileUpdate extends Schema.Schema.Type<typeof ProfileUpdate> {}
