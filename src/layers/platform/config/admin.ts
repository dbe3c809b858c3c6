import { section } from "./section.js"
import { secret } from "./variable.js"

export const adminSection = section("Admin", {
  token: secret({
    name: "ADMIN_TOKEN",
    whenUnset: "none (admin users' own tokens still open the admin API)",
    description: "operator bearer token of /api/admin (dead letters); at least 32 characters in production"
  })
}, (v) => v)
