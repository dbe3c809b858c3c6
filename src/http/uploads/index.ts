import { Layer } from "effect"
import { AuthenticationLive } from "../accounts/Authentication.js"
import { UploadsHandlers } from "./UploadsHandlers.js"

/** Upload, download and delete of the caller's private files, behind the bearer Authentication. */
export const UploadsHttpLive = UploadsHandlers.pipe(Layer.provide(AuthenticationLive))
