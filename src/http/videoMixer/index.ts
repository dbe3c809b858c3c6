import { Layer } from "effect"
import { AuthenticationLive } from "../accounts/Authentication.js"
import { generateRoute } from "./generateRoute.js"
import { VideoMixerHandlers } from "./VideoMixerHandlers.js"

/** Video Mixer's routes (/api/apps/video-mixer), behind the bearer Authentication. */
export const VideoMixerHttpLive = VideoMixerHandlers.pipe(Layer.provide(AuthenticationLive))

/** Its routes on the lean path (see platform/leanRoutes.ts). */
export const videoMixerLeanRoutes = [generateRoute]
