/**
 * Deep log redaction. pino's own `redact` is path based with no recursive wildcard and never looks
 * inside message strings, so secrets nested deeper than the listed paths, or interpolated into a
 * message, would leak; this walks every value once instead.
 */

export const REDACTED = "[REDACTED]"

/** Keys whose values are never logged, at any depth. */
export const SECRET_KEY = /password|passwd|token|secret|authorization|cookie|api[-_]?key|signature|jwt|credential|private[-_]?key/i

const MAX_DEPTH = 12

export interface Redactor {
  /** A redacted copy: secret keys masked at any depth, secret values masked inside every string. */
  readonly value: (input: unknown) => unknown
  readonly text: (input: string) => string
}

export const makeRedactor = (secretValues: ReadonlyArray<string>): Redactor => {
  // Longest first so a secret that contains another is masked whole.
  const secrets = [...new Set(secretValues.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length)

  const text = (input: string): string => {
    let out = input
    for (const secret of secrets) {
      if (out.includes(secret)) out = out.split(secret).join(REDACTED)
    }
    return out
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
        return input.toString()
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
      if (Array.isArray(obj)) return obj.map((item) => walk(item, depth + 1, seen))
      if (obj instanceof Map) {
        return walk(Object.fromEntries(obj), depth, seen)
      }
      if (obj instanceof Uint8Array) return `[Bytes ${obj.byteLength}]`
      const out: Record<string, unknown> = {}
      if (obj instanceof Error) {
        out["type"] = obj.name
        out["message"] = text(obj.message)
        if (obj.stack !== undefined) out["stack"] = text(obj.stack)
        if (obj.cause !== undefined) out["cause"] = walk(obj.cause, depth + 1, seen)
      }
      for (const [key, val] of Object.entries(obj)) {
        if (key === "stack" || key === "message") continue
        out[key] = SECRET_KEY.test(key) ? REDACTED : walk(val, depth + 1, seen)
      }
      return out
    } finally {
      seen.delete(obj)
    }
  }

  return { value: (input) => walk(input, 0, new WeakSet()), text }
}
