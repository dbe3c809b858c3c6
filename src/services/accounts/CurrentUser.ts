import { Context } from "effect"
import type { UserRole } from "./User.js"

/** The authenticated caller, provided to handlers by the auth middleware. */
export interface CurrentUserShape {
  readonly id: string
  readonly email: string
  readonly role: UserRole
  readonly tags: ReadonlyArray<string>
  readonly sessionId: string
}

export class CurrentUser extends Context.Tag("app/CurrentUser")<CurrentUser, CurrentUserShape>() {}
