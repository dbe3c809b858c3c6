import { Either } from "effect"

/**
 * The CORS policy: which origins may read responses with credentials. Configured origins and
 * request origins are parsed as URLs and compared by scheme, host labels and port; nothing is ever
 * turned into a regular expression. Shared by the HTTP middleware and any WebSocket endpoint.
 */

/** How many host labels the `*` of `https://*.lumiku.com` stands for: exactly one, or one or more. */
export type WildcardDepth = "one" | "any"

/** One CORS_ORIGIN entry: an exact origin, or `scheme://*.base[:port]`. */
export interface OriginEntry {
  /** The entry in canonical form, e.g. `https://app.lumiku.com` or `https://*.lumiku.com`. */
  readonly source: string
  readonly scheme: "http:" | "https:"
  readonly wildcard: boolean
  /** Host labels; for a wildcard, those of the base after `*.`. */
  readonly labels: ReadonlyArray<string>
  /** "" is the scheme's default port. */
  readonly port: string
}

export interface CorsPolicy {
  /** Exact origins, as browsers serialize them. */
  readonly exact: ReadonlySet<string>
  readonly wildcards: ReadonlyArray<OriginEntry>
  readonly wildcardDepth: WildcardDepth
  /** Header values, joined once. "" means the header is not sent. */
  readonly allowMethods: string
  readonly allowHeaders: string
  readonly exposeHeaders: string
  readonly maxAgeSeconds: number
}

/** The Vite dev server, as `parseOriginEntry("http://localhost:5173")` reads it. */
export const DEFAULT_ORIGINS: ReadonlyArray<OriginEntry> = [
  { source: "http://localhost:5173", scheme: "http:", wildcard: false, labels: ["localhost"], port: "5173" }
]
export const DEFAULT_METHODS: ReadonlyArray<string> = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
export const DEFAULT_HEADERS: ReadonlyArray<string> = [
  "Content-Type",
  "Authorization",
  "X-Requested-With",
  "Accept",
  "Origin",
  "X-Request-Id",
  "Idempotency-Key"
]
export const EXPOSED_HEADERS: ReadonlyArray<string> = [
  "X-Request-Id",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "X-RateLimit-Limit",
  "X-RateLimit-Remaining",
  "X-RateLimit-Reset",
  "Retry-After",
  "X-Total-Count",
  "X-Next-Cursor"
]
export const MAX_AGE_SECONDS = 86_400

const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

const isHostLabel = (label: string | undefined): boolean => label !== undefined && HOST_LABEL.test(label)

/** Parses one CORS_ORIGIN entry; the error says what is wrong with it. */
export const parseOriginEntry = (raw: string): Either.Either<OriginEntry, string> => {
  const text = raw.trim().toLowerCase()
  const fail = (why: string) => Either.left(`entry ${JSON.stringify(raw.trim())} ${why}`)
  const schemeEnd = text.indexOf("://")
  const scheme = schemeEnd === -1 ? "" : text.slice(0, schemeEnd)
  if (scheme !== "https" && scheme !== "http") return fail("must start with https:// or http://")
  const rest = text.slice(schemeEnd + 3)
  const wildcard = rest.startsWith("*.")
  const hostAndPort = wildcard ? rest.slice(2) : rest
  if (hostAndPort.includes("*")) {
    return fail("may only use * as the whole first label, as in https://*.lumiku.com")
  }
  if (hostAndPort.includes("@")) return fail("must not contain userinfo (user@)")
  if (/[/?#]/.test(hostAndPort)) return fail("must not have a path, query or fragment (an origin is scheme://host[:port])")
  const url = URL.parse(`${scheme}://${hostAndPort}`)
  if (url === null || url.hostname === "") return fail("is not a valid URL")
  if (url.origin !== `${scheme}://${hostAndPort}`) {
    const expected = wildcard ? url.origin.replace("://", "://*.") : url.origin
    return fail(`is not written as browsers send origins (expected ${JSON.stringify(expected)})`)
  }
  const hostname = url.hostname
  if (hostname.endsWith(".")) return fail("must not end with a dot")
  const ipv6 = hostname.startsWith("[")
  const labels = ipv6 ? [hostname] : hostname.split(".")
  if (!ipv6 && !labels.every(isHostLabel)) return fail("has a host label that is not letters, digits and hyphens")
  if (wildcard) {
    if (ipv6 || /^\d+$/.test(labels[labels.length - 1] ?? "")) return fail("puts a wildcard in an IP address")
    if (labels.length < 2) return fail("needs a wildcard base of at least two labels, as in https://*.lumiku.com")
  }
  return Either.right({
    source: wildcard ? `${scheme}://*.${url.host}` : url.origin,
    scheme: url.protocol === "https:" ? "https:" : "http:",
    wildcard,
    labels,
    port: url.port
  })
}

/** Parses every entry; the error lists one problem per bad entry. */
export const parseOriginEntries = (
  raw: ReadonlyArray<string>
): Either.Either<ReadonlyArray<OriginEntry>, ReadonlyArray<string>> => {
  const entries: Array<OriginEntry> = []
  const problems: Array<string> = []
  for (const item of raw) {
    const parsed = parseOriginEntry(item)
    if (Either.isRight(parsed)) entries.push(parsed.right)
    else problems.push(parsed.left)
  }
  return problems.length === 0 ? Either.right(entries) : Either.left(problems)
}

/**
 * Parses a list of HTTP tokens (methods or header names). `*` is refused: with credentials
 * browsers read it as a literal name, not as "any". Methods are upper-cased (browsers only
 * normalize the case of some, not PATCH); duplicates are dropped case-insensitively.
 */
export const parseTokens = (
  raw: ReadonlyArray<string>,
  kind: "method" | "header"
): Either.Either<ReadonlyArray<string>, ReadonlyArray<string>> => {
  const seen = new Set<string>()
  const tokens: Array<string> = []
  const problems: Array<string> = []
  for (const item of raw) {
    const token = kind === "method" ? item.trim().toUpperCase() : item.trim()
    if (token === "*") problems.push(`${kind} "*" is not allowed: list the ${kind}s`)
    else if (!TOKEN.test(token)) problems.push(`${JSON.stringify(token)} is not a valid ${kind} name`)
    else if (!seen.has(token.toLowerCase())) {
      seen.add(token.toLowerCase())
      tokens.push(token)
    }
  }
  return problems.length === 0 ? Either.right(tokens) : Either.left(problems)
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"])

/** Entries with http:// on a host other than the loopback: a network attacker could read their responses. */
export const plainHttpOrigins = (entries: ReadonlyArray<OriginEntry>): ReadonlyArray<string> =>
  entries.filter((e) => e.scheme === "http:" && !LOOPBACK.has(e.labels.join("."))).map((e) => e.source)

export const makeCorsPolicy = (options: {
  readonly origins: ReadonlyArray<OriginEntry>
  readonly wildcardDepth?: WildcardDepth
  readonly methods?: ReadonlyArray<string>
  readonly headers?: ReadonlyArray<string>
  readonly exposeHeaders?: ReadonlyArray<string>
}): CorsPolicy => ({
  exact: new Set(options.origins.filter((e) => !e.wildcard).map((e) => e.source)),
  wildcards: options.origins.filter((e) => e.wildcard),
  wildcardDepth: options.wildcardDepth ?? "one",
  allowMethods: (options.methods ?? DEFAULT_METHODS).join(", "),
  allowHeaders: (options.headers ?? DEFAULT_HEADERS).join(", "),
  exposeHeaders: (options.exposeHeaders ?? EXPOSED_HEADERS).join(", "),
  maxAgeSeconds: MAX_AGE_SECONDS
})

const matchesWildcard = (entry: OriginEntry, url: URL, depth: WildcardDepth): boolean => {
  if (url.protocol !== entry.scheme || url.port !== entry.port) return false
  const labels = url.hostname.split(".")
  const extra = labels.length - entry.labels.length
  if (extra < 1 || (depth === "one" && extra !== 1)) return false
  for (let i = 0; i < entry.labels.length; i++) {
    if (labels[extra + i] !== entry.labels[i]) return false
  }
  for (let i = 0; i < extra; i++) {
    if (!isHostLabel(labels[i])) return false
  }
  return true
}

/**
 * Whether `origin` (an Origin header value) may read responses. It must be exactly what a browser
 * sends: the URL serialization of an http(s) origin, with lower-case scheme and host, no default
 * port, no trailing dot, path or userinfo. Anything else (`null`, an upper-case variant, two
 * origins joined by a comma, an empty value) is denied: browsers never send it, and an echoed
 * non-canonical value would not satisfy a browser's check anyway. No header (undefined) is false
 * too; a WebSocket endpoint decides for itself whether to serve non-browser clients that send none.
 */
export const isAllowedOrigin = (policy: CorsPolicy, origin: string | undefined): boolean => {
  if (origin === undefined || origin === "") return false
  // Every exact entry is a canonical serialization, so string equality is the full comparison.
  if (policy.exact.has(origin)) return true
  if (policy.wildcards.length === 0) return false
  const url = URL.parse(origin)
  if (url === null || url.origin !== origin || url.hostname.endsWith(".")) return false
  for (const entry of policy.wildcards) {
    if (matchesWildcard(entry, url, policy.wildcardDepth)) return true
  }
  return false
}
