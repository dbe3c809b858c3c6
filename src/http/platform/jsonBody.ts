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
