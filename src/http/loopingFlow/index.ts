import { Layer } from "effect"
import { AuthenticationLive } from "../accounts/Authentication.js"
import { LoopingFlowHandlers } from "./LoopingFlowHandlers.js"

/** Looping Flow's routes (/api/apps/looping-flow), behind the bearer Authentication. */
export const LoopingFlowHttpLive = LoopingFlowHandlers.pipe(Layer.provide(AuthenticationLive))
