import type { NodeEnv, Role } from "../../../services/platform/AppConfig.js"
import { section } from "./section.js"
import { oneOf } from "./variable.js"

export const processSection = section("Process", {
  env: oneOf<NodeEnv>({
    name: "NODE_ENV",
    values: ["development", "production", "test"],
    default: "development",
    description: "production turns on the production rules (see above) and JSON logs"
  }),
  role: oneOf<Role>({
    name: "ROLE",
    values: ["all", "api", "worker"],
    default: "all",
    description: "what this process runs: the API, the job workers, or both"
  })
}, (v) => ({ env: v.env, role: v.role }))
