import {
  DEFAULT_HEADERS,
  DEFAULT_METHODS,
  DEFAULT_ORIGINS,
  makeCorsPolicy,
  parseOriginEntries,
  parseTokens,
  type WildcardDepth
} from "../../../services/platform/CorsPolicy.js"
import { section } from "./section.js"
import { list, oneOf } from "./variable.js"

export const corsSection = section("CORS", {
  origins: list({
    name: "CORS_ORIGIN",
    default: DEFAULT_ORIGINS.map((entry) => entry.source).join(","),
    accepts: "comma list of origins",
    description: "exact origins and https://*.example.com wildcards (scheme://host[:port], no path); in production not empty, not only localhost, no http:// except the loopback",
    parse: parseOriginEntries
  }),
  wildcardDepth: oneOf<WildcardDepth>({
    name: "CORS_WILDCARD_DEPTH",
    values: ["one", "any"],
    default: "one",
    description: "how many host labels a * stands for: one (a.example.com) or any (a.b.example.com); never the apex"
  }),
  methods: list({
    name: "CORS_METHODS",
    default: DEFAULT_METHODS.join(","),
    accepts: "comma list of methods",
    description: "Access-Control-Allow-Methods of a preflight (* is refused)",
    parse: (items) => parseTokens(items, "method")
  }),
  headers: list({
    name: "CORS_HEADERS",
    default: DEFAULT_HEADERS.join(","),
    accepts: "comma list of headers",
    description: "Access-Control-Allow-Headers of a preflight; request headers are never reflected",
    parse: (items) => parseTokens(items, "header")
  })
}, (v) => ({
  origins: v.origins.map((entry) => entry.source),
  policy: makeCorsPolicy({ origins: v.origins, wildcardDepth: v.wildcardDepth, methods: v.methods, headers: v.headers })
}))
