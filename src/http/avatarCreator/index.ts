import { Layer } from "effect"
import { AuthenticationLive } from "../accounts/Authentication.js"
import { AvatarCreatorHandlers, AvatarPresetsHandlers } from "./AvatarCreatorHandlers.js"

/** /api/apps/avatar-creator: the caller's projects and avatars behind the bearer Authentication; presets and health public. */
export const AvatarCreatorHttpLive = Layer.mergeAll(AvatarCreatorHandlers.pipe(Layer.provide(AuthenticationLive)), AvatarPresetsHandlers)
