import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { AccountLocked, Conflict, RateLimited, ServiceUnavailable, Unauthorized, ValidationError } from "../platform/ApiError.js"
import { ProfileUpdate, Session, SessionTokens } from "../../services/accounts/Session.js"
import { Profile } from "../../services/accounts/User.js"
import { Authentication } from "./Authentication.js"

const Email = Schema.String.pipe(Schema.maxLength(254))
const Password = Schema.String.pipe(Schema.maxLength(1024))

export const SessionBody = Schema.Struct({
  success: Schema.Literal(true),
  data: Session
}).annotations({ identifier: "Session" })

/** The web app reads `data.user`/`data.token` or the same two flat; both are sent. */
export const ProfileUpdated = Schema.Struct({
  success: Schema.Literal(true),
  data: ProfileUpdate,
  ...ProfileUpdate.fields
}).annotations({ identifier: "ProfileUpdated" })

/** Sign-up, sign-in and the caller's own profile, in the shapes the Lumiku web app reads. */
export class AuthApi extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("register", "/register")
      .setPayload(Schema.Struct({ email: Email, password: Password, name: Schema.optional(Schema.String.pipe(Schema.maxLength(100))) }))
      .addSuccess(SessionBody, { status: 201 })
      .addError(ValidationError)
      .addError(Conflict)
      .addError(RateLimited)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "Creates an account with 100 welcome credits. Password: 12-128 characters, 3 of 4 character classes.")
  )
  .add(
    HttpApiEndpoint.post("login", "/login")
      .setPayload(Schema.Struct({ email: Email, password: Password }))
      .addSuccess(SessionBody)
      .addError(Unauthorized)
      .addError(AccountLocked)
      .addError(RateLimited)
      .addError(ServiceUnavailable)
  )
  .add(
    HttpApiEndpoint.post("refresh", "/refresh")
      .setPayload(Schema.Struct({ refreshToken: Schema.String.pipe(Schema.maxLength(200)) }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), data: SessionTokens }))
      .addError(Unauthorized)
      .annotate(OpenApi.Description, "Rotates the refresh token; reusing an old one fails.")
  )
  .add(
    HttpApiEndpoint.post("logout", "/logout")
      .addSuccess(Schema.Struct({ success: Schema.Literal(true) }))
      .middleware(Authentication)
  )
  .add(
    HttpApiEndpoint.get("profile", "/profile")
      .addSuccess(Profile)
      .middleware(Authentication)
  )
  .add(
    HttpApiEndpoint.put("updateProfile", "/profile")
      .setPayload(Schema.Struct({
        name: Schema.optional(Schema.String.pipe(Schema.maxLength(100))),
        email: Schema.optional(Email),
        currentPassword: Schema.optional(Password),
        newPassword: Schema.optional(Password)
      }))
      .addSuccess(ProfileUpdated)
      .addError(ValidationError)
      .addError(Conflict)
      .addError(AccountLocked)
      .middleware(Authentication)
      .annotate(OpenApi.Description, "Changing the email or the password needs the current password (counted against the login lockout) and ends every other session.")
  )
  .prefix("/api/auth")
  .annotate(OpenApi.Title, "Auth") {}
