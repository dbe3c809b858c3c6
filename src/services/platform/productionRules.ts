/**
 * Checks that only apply when NODE_ENV=production. Each returns problem strings that name the
 * variable and never include its value.
 */

const JWT_PLACEHOLDERS = [
  "secret",
  "password",
  "changeme",
  "change-this",
  "your-secret",
  "default",
  "test",
  "12345678",
  "admin"
] as const

const PAYMENT_PLACEHOLDERS = ["test", "sandbox", "demo", "example", "change", "replace", "your-", "12345"] as const

/** Shannon entropy in bits per character. */
export const shannonEntropy = (value: string): number => {
  if (value.length === 0) return 0
  const counts = new Map<string, number>()
  for (const ch of value) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  const length = [...value].length
  let bits = 0
  for (const count of counts.values()) {
    const p = count / length
    bits -= p * Math.log2(p)
  }
  return bits
}

export const checkJwtSecret = (name: string, value: string): Array<string> => {
  const problems: Array<string> = []
  if (value.length < 32) problems.push(`${name} must be at least 32 characters in production`)
  if (shannonEntropy(value) < 3.5) problems.push(`${name} is too predictable (entropy below 3.5 bits per character)`)
  const lower = value.toLowerCase()
  const placeholder = JWT_PLACEHOLDERS.find((p) => lower.includes(p))
  if (placeholder !== undefined) problems.push(`${name} contains a known placeholder ("${placeholder}")`)
  return problems
}

export const checkPaymentCredential = (
  name: string,
  value: string | undefined,
  options: { readonly minLength?: number } = {}
): Array<string> => {
  if (value === undefined || value.trim() === "") return [`${name} is required in production`]
  const problems: Array<string> = []
  const lower = value.toLowerCase()
  const placeholder = PAYMENT_PLACEHOLDERS.find((p) => lower.includes(p))
  if (placeholder !== undefined) {
    problems.push(`${name} looks like a test or placeholder credential (contains "${placeholder}")`)
  }
  if (options.minLength !== undefined && value.length < options.minLength) {
    problems.push(`${name} must be at least ${options.minLength} characters in production`)
  }
  return problems
}

export const checkHttpsUrl = (name: string, value: string | undefined): Array<string> => {
  if (value === undefined || value.trim() === "") return [`${name} is required in production`]
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return [`${name} is not a valid URL`]
  }
  return url.protocol === "https:" ? [] : [`${name} must be an https:// URL in production`]
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "0.0.0.0"])

export const checkCorsOrigins = (name: string, origins: ReadonlyArray<string>): Array<string> => {
  if (origins.length === 0) return [`${name} must list at least one origin in production`]
  const allLocal = origins.every((origin) => {
    try {
      return LOCAL_HOSTS.has(new URL(origin.replace("*.", "wildcard.")).hostname)
    } catch {
      return false
    }
  })
  return allLocal ? [`${name} lists only localhost origins; set the production origins`] : []
}
