import { Layer } from "effect"
import { AdminCredentials } from "./AdminAuth.js"
import { HealthHandlers } from "./HealthHandlers.js"

/** The platform's routes: the probes and the health reports. */
export const PlatformHttpLive = HealthHandlers.pipe(Layer.provide(AdminCredentials.Default))
