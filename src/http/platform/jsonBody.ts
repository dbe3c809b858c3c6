import { type Envelope, formatPath } from "./middleware/errorEnvelope.js"

/**
 * Checks on a parsed JSON body that its schema cannot make: how deep it nests and whether any string
 * holds U+0000. Deep nesting is refused before schema decoding, whose error formatting recurses per
 * level (3,000 levels overflowed the stack); NUL is refused because Postgres cannot store it in
 * text (SQLSTATE 22021), and no field of this API has a use for it.
 */

/** Deeper than any body this API accepts (its payloads nest at most a few levels). */
export const MAX_JSON_DEPTH = 64

export type JsonProblem =
  | { readonly _tag: "TooDeep"; readonly maxDepth: number }
  | { readonly _tag: "NulCharacter"; readonly path: ReadonlyArray<string | number> }

/** The first problem found, walking iteratively (an explicit stack, so no input can overflow it). */
export const inspectJson = (value: unknown): JsonProblem | undefined => {
  const stack: Array<{ readonly value: unknown; readonly depth: number; readonly path: ReadonlyArray<string | number> }> = [
    { value, depth: 0, path: [] }
  ]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const current = item.value
    if (typeof current === "string") {
      if (current.includes("\u0000")) return { _tag: "NulCharacter", path: item.path }
      continue
    }
    if (typeof current !== "object" || current === null) continue
    if (item.depth >= MAX_JSON_DEPTH) return { _tag: "TooDeep", maxDepth: MAX_JSON_DEPTH }
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], depth: item.depth + 1, path: [...item.path, i] })
    } else {
      for (const [key, child] of Object.entries(current)) {
        if (key.includes("\u0000")) return { _tag: "NulCharacter", path: [...item.path, key] }
        stack.push({ value: child, depth: item.depth + 1, path: [...item.path, key] })
      }
    }
  }
  return undefined
}

/** The answer to a problem `inspectJson` found: 400, as the cross-site screen and the lean routes give it. */
export const jsonProblemEnvelope = (problem: JsonProblem): Envelope => {
  if (problem._tag === "TooDeep") {
    return { status: 400, code: "MALFORMED_REQUEST", message: `The JSON body nests deeper than ${problem.maxDepth} levels` }
  }
  const path = formatPath(problem.path)
  const message = `Invalid request at ${path}: the NUL character (U+0000) is not allowed`
  return {
    status: 400,
    code: "VALIDATION_ERROR",
    message,
    fields: { issues: [{ path, message: "the NUL character (U+0000) is not allowed" }] }
  }
}
