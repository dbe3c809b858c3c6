import { Layer } from "effect"
import { AuthenticationLive } from "../accounts/Authentication.js"
import { balanceRoute } from "./balanceRoute.js"
import { CreditsHandlers } from "./CreditsHandlers.js"

/** The caller's balance and ledger history. */
export const CreditsHttpLive = CreditsHandlers.pipe(Layer.provide(AuthenticationLive))

/** Its routes on the lean path (see platform/leanRoutes.ts). */
export const creditsLeanRoutes = [balanceRoute]
