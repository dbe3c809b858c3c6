import { safeParse } from "fast-content-type-parse"

/**
 * Whether a Content-Type header names JSON: `application/json` ("json") or a structured
 * `application/*+json` type ("structured"), any parameters allowed; undefined for anything else.
 * The header is parsed as RFC 9110 media type syntax (by fast-content-type-parse, fastify's
 * parser), never substring-matched: `text/plain; x=application/json` is text/plain, and a
 * malformed header is no media type at all.
 */
export const jsonMediaType = (header: string): "json" | "structured" | undefined => {
  const type = safeParse(header).type
  if (type === "application/json") return "json"
  return type.startsWith("application/") && type.endsWith("+json") ? "structured" : undefined
}
