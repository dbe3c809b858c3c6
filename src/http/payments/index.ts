import { Layer } from "effect"
import { AuthenticationLive } from "../accounts/Authentication.js"
import { AdminAuthLive, AdminCredentials } from "../platform/AdminAuth.js"
import { PaymentsHandlers } from "./PaymentsHandlers.js"

/** /api/payment (bearer user routes, the public gateway callback) and /api/admin/payments (AdminAuth). */
export const PaymentsHttpLive = PaymentsHandlers.pipe(
  Layer.provide(AuthenticationLive),
  Layer.provide(AdminAuthLive),
  Layer.provide(AdminCredentials.Default)
)
