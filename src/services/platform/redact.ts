import { Redacted } from "effect"

/**
 * Deep log redaction. pino's own `redact` is path based with no recursive wildcard and never looks
 * inside strings, so secrets nested deeper than the listed paths, interpolated into a message, or
 * carried in a URL, a form body, a header or JSON inside a string would leak; this walks every
 * value once instead, keys included, and scans the strings that could hold a secret.
 */

export const REDACTED = "[REDACTED]"

/** Words that name a secret anywhere inside a key (`clientSecret`, `x-api-key`, `AWS_ACCESS_KEY_ID`). */
export const SECRET_KEY =
  /password|passwd|passphrase|secret|token|authorization|cookie|api[-_]?key|access[-_]?key|signature|jwt|credential|private[-_]?key|bearer/i

/** Short words that name a secret only as a whole word of a key, so `author`, `side` or `cwd` stay. */
const SECRET_WORDS = new Set(["pwd", "pw", "pass", "auth", "session", "sess", "sid", "sessionid", "sessid", "jsessionid", "phpsessid", "otp", "csrf", "xsrf"])

/**
 * A key whose last word says it describes a secret rather than holds it (`tokenCount`,
 * `sessionCount`, `passwordLength`, `tokenExpiresAt`): its value is kept, still scanned like any value.
 */
const DESCRIBES = new Set(["count", "length", "len", "size", "total", "type", "kind", "expires", "expiry", "expiration", "ttl", "at", "used", "remaining", "limit", "max", "min", "version", "enabled", "required", "valid", "present"])

const words = (key: string): Array<string> =>
  key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase().split(/[^a-z0-9]+/).filter((w) => w !== "")

const classify = (key: string): boolean => {
  const parts = words(key)
  const named = SECRET_KEY.test(key) || parts.some((w) => SECRET_WORDS.has(w))
  return named && !(parts.length > 1 && DESCRIBES.has(parts[parts.length - 1]!))
}

// Keys repeat (every access line has the same few), so the answer is cached; bounded against a
// caller that logs objects keyed by ids.
const keyCache = new Map<string, boolean>()
const KEY_CACHE_MAX = 2000

/** Whether a field of this name holds a secret (its value is then never logged). */
export const isSecretKey = (key: string): boolean => {
  const known = keyCache.get(key)
  if (known !== undefined) return known
  const secret = classify(key)
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.clear()
  keyCache.set(key, secret)
  return secret
}

/** A string without any of these cannot hold a key/value pair, a bearer or basic credential or a JWT. */
const MARKER = /[=:]|bearer|basic|eyJ|hf_/i
const HAS_BEARER = /bearer/i
const BEARER = /\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*/gi
const HAS_BASIC = /basic/i
const BASIC = /\b(basic)(\s+)([A-Za-z0-9+/]{6,}={0,2})/gi
/** A JWT (or JWS/JWE) by shape: base64url of `{"` then at least two more dot-separated parts. */
const JWT_SHAPE = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g
/** A Hugging Face access token by shape (`hf_` and at least 20 letters and digits), wherever it is quoted. */
const HF_TOKEN_SHAPE = /\bhf_[A-Za-z0-9]{20,}/g
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]{0,31}:\/\/[^\s:@/]*:)([^\s@/]+)(@)/gi
/** A key (bare, quoted or escaped-quoted) and its separator: `token=`, `"password":`, `\"pwd\": `, `Cookie: `. */
// A key starts only where no key character precedes it and is at most 64 long, so a long run of
// word characters (a base64 blob) is tried once, not from every position (quadratic time).
const KEY_SEP = /(?<![\w$.-])([A-Za-z_$][\w$.-]{0,63})(\\?["']?)([ \t]*[:=][ \t]*)/g
/** Headers whose whole value (up to the end of the line) is a credential. */
const WHOLE_LINE = /^(?:set-)?cookie$|^(?:proxy-)?authorization$/i

/** What ends a bare (unquoted) value: whitespace, a pair separator, a quote or a bracket. */
const BARE_END = new Set([..." \t\r\n&;,\"'<>\\(){}[]"].map((c) => c.charCodeAt(0)))

/** Where a value starting at `start` ends (exclusive): a quoted string, a bracketed JSON value or a bare run. */
const valueEnd = (s: string, start: number, wholeLine: boolean): number => {
  const first = s[start]
  if (first === "\\" && s[start + 1] === "\"") {
    const close = s.indexOf("\\\"", start + 2)
    return close === -1 ? s.length : close + 2
  }
  if (first === "\"" || first === "'") {
    for (let i = start + 1; i < s.length; i++) {
      if (s[i] === "\\") i++
      else if (s[i] === first) return i + 1
    }
    return s.length
  }
  if (first === "{" || first === "[") {
    let depth = 0
    let quote: string | undefined
    for (let i = start; i < s.length; i++) {
      const c = s[i]
      if (c === "\\") i++
      else if (quote !== undefined) {
        if (c === quote) quote = undefined
      } else if (c === "\"") quote = c
      else if (c === "{" || c === "[") depth++
      else if ((c === "}" || c === "]") && --depth === 0) return i + 1
    }
    return s.length
  }
  let i = start
  if (wholeLine) {
    while (i < s.length && s[i] !== "\n" && s[i] !== "\r" && s[i] !== "\"" && s[i] !== "\\") i++
  } else {
    while (i < s.length && !BARE_END.has(s.charCodeAt(i))) i++
  }
  return i
}

/** Masks the value of every `key=value`, `key: value` and JSON `"key": value` whose key is a secret one. */
const maskPairs = (s: string): string => {
  let out = ""
  let from = 0
  KEY_SEP.lastIndex = 0
  for (let match = KEY_SEP.exec(s); match !== null; match = KEY_SEP.exec(s)) {
    const key = match[1]!
    const valueStart = match.index + match[0].length
    if (!isSecretKey(key) || valueStart >= s.length) continue
    const end = valueEnd(s, valueStart, match[3]!.includes(":") && WHOLE_LINE.test(key))
    if (end === valueStart) continue
    const first = s[valueStart]
    const quote = first === "\\" ? "\\\"" : first === "\"" || first === "'" ? first : ""
    out += s.slice(from, valueStart) + quote + REDACTED + quote
    from = end
    KEY_SEP.lastIndex = end
  }
  return from === 0 ? s : out + s.slice(from)
}

const basicCredential = (match: string, word: string, gap: string, encoded: string): string => {
  // "Basic" is also an English word: only mask what decodes to user:password.
  const decoded = Buffer.from(encoded, "base64").toString("latin1")
  return decoded.includes(":") ? `${word}${gap}${REDACTED}` : match
}

export interface Redactor {
  /** A redacted copy: secret keys masked at any depth, secret values masked inside every string and key. */
  readonly value: (input: unknown) => unknown
  readonly text: (input: string) => string
}

const MAX_DEPTH = 12

/**
 * What kind of value a failure is: an Error's class (its `name` is often just "Error" in a
 * subclass), a tagged value's `_tag`, else its type of value.
 */
export const typeName = (value: unknown): string => {
  if (typeof value !== "object" || value === null) return typeof value
  try {
    const tag = (value as { readonly _tag?: unknown })._tag
    const ctor = (value.constructor as { readonly name?: unknown } | undefined)?.name
    if (typeof ctor === "string" && ctor !== "" && ctor !== "Object") return ctor
    if (typeof tag === "string") return tag
    return value instanceof Error ? value.name : "object"
  } catch {
    return "object" // a throwing getter or proxy: the line is still written
  }
}

export const makeRedactor = (secretValues: ReadonlyArray<string>): Redactor => {
  // Longest first so a secret that contains another is masked whole.
  const secrets = [...new Set(secretValues.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length)

  // One scan decides whether a string needs any work: it holds a secret value or a marker.
  const escape = (literal: string) => literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  const suspicious = new RegExp([...secrets.map(escape), MARKER.source].join("|"), "i")

  const text = (input: string): string => {
    // Fast path: most strings (methods, routes, ids, plain messages) hold neither.
    if (!suspicious.test(input)) return input
    let out = input
    for (const secret of secrets) {
      if (out.includes(secret)) out = out.split(secret).join(REDACTED)
    }
    if (!MARKER.test(out)) return out
    // Each pattern only where its own marker is, to keep the slow path short.
    if (out.includes("://")) out = out.replace(URL_USERINFO, `$1${REDACTED}$3`)
    if (HAS_BEARER.test(out)) out = out.replace(BEARER, `$1$2${REDACTED}`)
    if (HAS_BASIC.test(out)) out = out.replace(BASIC, basicCredential)
    if (out.includes("eyJ")) out = out.replace(JWT_SHAPE, REDACTED)
    if (out.includes("hf_")) out = out.replace(HF_TOKEN_SHAPE, REDACTED)
    return out.includes("=") || out.includes(":") ? maskPairs(out) : out
  }

  // Keys repeat (every access line has the same few): what a key becomes is cached, bounded
  // against a caller that logs objects keyed by ids.
  const keys = new Map<string, { readonly name: string; readonly secret: boolean }>()
  const keyOf = (key: string) => {
    let known = keys.get(key)
    if (known === undefined) {
      if (keys.size >= KEY_CACHE_MAX) keys.clear()
      known = { name: text(key), secret: isSecretKey(key) }
      keys.set(key, known)
    }
    return known
  }

  const walk = (input: unknown, depth: number, seen: WeakSet<object>): unknown => {
    switch (typeof input) {
      case "string":
        return text(input)
      case "number":
      case "boolean":
      case "undefined":
        return input
      case "bigint":
        return input.toString()
      case "symbol":
        return text(input.toString())
      case "function":
        return `[Function ${input.name || "anonymous"}]`
    }
    if (input === null) return null
    const obj = input as object
    if (seen.has(obj)) return "[Circular]"
    if (depth >= MAX_DEPTH) return "[Truncated]"
    seen.add(obj)
    try {
      if (obj instanceof Date) return obj.toISOString()
      if (obj instanceof URL) return text(obj.href)
      if (Redacted.isRedacted(obj)) return REDACTED
      if (Array.isArray(obj)) return obj.map((item) => walk(item, depth + 1, seen))
      if (obj instanceof Map) return walk(Object.fromEntries(obj), depth, seen)
      if (obj instanceof Uint8Array) return `[Bytes ${obj.byteLength}]`
      const out: Record<string, unknown> = {}
      const isError = obj instanceof Error
      if (isError) {
        out["type"] = typeName(obj)
        if (obj.name !== out["type"]) out["name"] = text(obj.name)
        out["message"] = text(obj.message)
        if (obj.stack !== undefined) out["stack"] = text(obj.stack)
        if (obj.cause !== undefined) out["cause"] = walk(obj.cause, depth + 1, seen)
        if (obj instanceof AggregateError) out["errors"] = walk(obj.errors, depth + 1, seen)
      }
      for (const [key, val] of Object.entries(obj)) {
        if (isError && key in out) continue
        const known = keyOf(key)
        let name = known.name
        // Two keys that were secret values would both be "[REDACTED]": keep both entries.
        if (name !== key) for (let n = 2; name in out; n++) name = `${known.name}#${n}`
        out[name] = known.secret ? REDACTED : walk(val, depth + 1, seen)
      }
      return out
    } catch {
      // A throwing getter or proxy: the line is still written, without this value.
      return "[Unreadable]"
    } finally {
      seen.delete(obj)
    }
  }

  return { value: (input) => walk(input, 0, new WeakSet()), text }
}
