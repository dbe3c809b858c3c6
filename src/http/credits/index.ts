import { Layer } from "effect"
import { AuthenticationLive } from "../accounts/Authentication.js"
import { CreditsHandlers } from "./CreditsHandlers.js"

/** The caller's balance and ledger history. */
export const CreditsHttpLive = CreditsHandlers.pipe(Layer.provide(AuthenticationLive))
