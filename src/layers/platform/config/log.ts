import { Option } from "effect"
import type { LogFormat, LogLevelName } from "../../../services/platform/AppConfig.js"
import { section } from "./section.js"
import { optionalOneOf } from "./variable.js"

export const logSection = section("Logging", {
  level: optionalOneOf<LogLevelName>({
    name: "LOG_LEVEL",
    values: ["trace", "debug", "info", "warn", "error", "fatal", "silent"],
    whenUnset: "info (warn when NODE_ENV=test)",
    description: "least severe level written"
  }),
  format: optionalOneOf<LogFormat>({
    name: "LOG_FORMAT",
    values: ["json", "pretty"],
    whenUnset: "json in production, pretty otherwise",
    description: "one JSON object per line, or coloured lines for a terminal"
  })
}, (v, { env }) => ({
  level: Option.getOrElse(v.level, (): LogLevelName => (env === "test" ? "warn" : "info")),
  format: Option.getOrElse(v.format, (): LogFormat => (env === "production" ? "json" : "pretty"))
}))
