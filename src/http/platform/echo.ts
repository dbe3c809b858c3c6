import { isSecretKey } from "../../services/platform/redact.js"

/**
 * What an error message may repeat of the request: at most ECHO_LIMIT characters of any value,
 * nothing of a secret field (the logger's isSecretKey decides which names are secret, in one place),
 * and nothing that is not a plain value (an object, such as an uploaded file with its server path).
 */

export const ECHO_LIMIT = 100

export const truncate = (text: string, max = ECHO_LIMIT): string =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`

export const isSecretPath = (path: ReadonlyArray<PropertyKey>): boolean =>
  path.some((segment) => typeof segment === "string" && isSecretKey(segment))

const ACTUAL = ", actual "
/** Effect's messages that never quote the value. */
const QUOTES_NOTHING = /^is (?:missing|unexpected)\b/
const PLAIN_VALUE = /^(?:"|-?\d|true\b|false\b|null\b|undefined\b|NaN\b|-?Infinity\b)/

/**
 * A schema issue's message fit to send back. Effect's formatter writes "Expected <type>, actual
 * <value>": the value is kept (truncated) only when it is a plain value of a non-secret field. A
 * message of another form on a secret field is replaced whole, since it may quote the value.
 */
export const safeIssueMessage = (path: ReadonlyArray<PropertyKey>, message: string): string => {
  const secret = isSecretPath(path)
  const at = message.indexOf(ACTUAL)
  if (at === -1) return secret && !QUOTES_NOTHING.test(message) ? "is invalid" : truncate(message, 2 * ECHO_LIMIT)
  const expected = truncate(message.slice(0, at), 2 * ECHO_LIMIT) // the schema's own text, not the request's
  const actual = message.slice(at + ACTUAL.length)
  return secret || !PLAIN_VALUE.test(actual) ? expected : `${expected}${ACTUAL}${truncate(actual)}`
}
