import { Layer } from "effect"
import { AuthenticationLive } from "./Authentication.js"
import { AuthHandlers } from "./AuthHandlers.js"

/** Registration, sign-in, sessions and the profile, behind the bearer authentication where they need it. */
export const AccountsHttpLive = AuthHandlers.pipe(Layer.provide(AuthenticationLive))
