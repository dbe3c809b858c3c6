import { Either } from "effect"
import { parseTrustedProxies } from "../../../services/platform/clientAddress.js"
import { section } from "./section.js"
import { integer, list, text } from "./variable.js"

export const httpSection = section("HTTP", {
  host: text({ name: "HOST", default: "0.0.0.0", description: "address the API listens on" }),
  port: integer({ name: "PORT", min: 0, max: 65535, default: 3000, description: "port the API listens on (0: any free port)" }),
  bodyLimitBytes: integer({
    name: "BODY_LIMIT_BYTES",
    min: 1024,
    max: 1024 * 1024 * 1024,
    default: 1024 * 1024,
    description: "requests with a larger body get 413 before it is read"
  }),
  trustedProxies: list({
    name: "TRUSTED_PROXIES",
    default: "",
    accepts: "comma list of IPs and CIDRs",
    description: "proxies (10.0.0.1, 10.0.0.0/8, fd00::/8) whose X-Forwarded-For hop is believed",
    parse: (items) => Either.map(parseTrustedProxies(items), (): ReadonlyArray<string> => items)
  })
}, (v) => v)
