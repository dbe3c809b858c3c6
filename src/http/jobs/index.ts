import { Layer } from "effect"
import { AdminAuthLive, AdminCredentials } from "../platform/AdminAuth.js"
import { AdminHandlers } from "./AdminHandlers.js"

/** The operators' job admin: queue counts and the dead letters (retry, discard), behind AdminAuth. */
export const JobsHttpLive = AdminHandlers.pipe(Layer.provide(AdminAuthLive), Layer.provide(AdminCredentials.Default))
