import { Layer } from "effect"
import { AuthenticationLive } from "../accounts/Authentication.js"
import { GenerationsHandlers } from "./GenerationsHandlers.js"

/** The caller's generations (list, recent, cancel, delete) and the apps offered, behind the bearer Authentication. */
export const GenerationsHttpLive = GenerationsHandlers.pipe(Layer.provide(AuthenticationLive))
