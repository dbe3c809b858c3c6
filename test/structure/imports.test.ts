import { readdirSync, readFileSync } from "node:fs"
import path from "node:path"
import { describe, expect, it } from "vitest"

/**
 * The tree is the architecture's map, so its rules are checked here:
 * - imports point down: services import only services; layers, http and workers import services
 *   and their own folder; only the entry files at the root of src compose everything;
 * - every module of services, layers, http and workers lives in a feature folder (the same names in
 *   each), and a feature outside services has its services folder.
 */
const src = path.resolve(import.meta.dirname, "../../src")
const TOP = ["services", "layers", "http", "workers"] as const
type Top = typeof TOP[number] | "migrations" | "root"

/** What each part may import, besides packages. */
const ALLOWED: Record<Top, ReadonlyArray<Top>> = {
  services: ["services"],
  layers: ["layers", "services", "migrations"],
  http: ["http", "services"],
  workers: ["workers", "services"],
  migrations: ["migrations", "services"],
  root: ["root", "services", "layers", "http", "workers", "migrations"]
}

/** Files that compose a top-level folder's features: one line per feature each. */
const COMPOSITION_LISTS = new Set(["http/Api.ts", "http/HttpLive.ts", "workers/registry.ts"])

const walk = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(path.join(dir, entry.name)) : entry.name.endsWith(".ts") ? [path.join(dir, entry.name)] : []
  )

const files = walk(src).map((file) => path.relative(src, file))

const partOf = (relative: string): Top => {
  const first = relative.split(path.sep)[0]!
  return (TOP as ReadonlyArray<string>).includes(first) || first === "migrations" ? first as Top : "root"
}

/** Relative import specifiers of a module (static, dynamic and type-only). */
export const importsOf = (text: string): Array<string> =>
  [...text.matchAll(/(?:from|import\(|import)\s*["'](\.{1,2}\/[^"']+)["']/g)].map((match) => match[1]!)

const violations = (relative: string, text: string): Array<string> =>
  importsOf(text).flatMap((specifier) => {
    const target = path.normalize(path.join(path.dirname(relative), specifier))
    if (target.startsWith("..")) return [] // package.json and other files outside src
    const from = partOf(relative)
    const to = partOf(target)
    return ALLOWED[from].includes(to) ? [] : [`${relative} imports ${target} (${from} -> ${to})`]
  })

describe("the tree", () => {
  it("imports point down: services import no layers, http or workers; those import no one another", () => {
    const found = files.flatMap((relative) => violations(relative, readFileSync(path.join(src, relative), "utf8")))
    expect(found).toEqual([])
  })

  it("the rule catches an upward import", () => {
    expect(violations("services/credits/Ledger.ts", `import { x } from "../../http/platform/ApiError.js"`)).toHaveLength(1)
    expect(violations("workers/jobs/runtime.ts", `import type { X } from "../../layers/jobs/JobQueuesLive.js"`)).toHaveLength(1)
    expect(violations("http/HttpLive.ts", `const m = await import("../workers/registry.js")`)).toHaveLength(1)
    expect(violations("http/accounts/AuthApi.ts", `import { Accounts } from "../../services/accounts/Accounts.js"`)).toEqual([])
  })

  it("every module lives in a feature folder, and each feature has its services", () => {
    const features = new Set(readdirSync(path.join(src, "services"), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name))
    const loose = files.filter((relative) => {
      const parts = relative.split(path.sep)
      return (TOP as ReadonlyArray<string>).includes(parts[0]!) && parts.length === 2 && !COMPOSITION_LISTS.has(parts.join("/"))
    })
    expect(loose).toEqual([])
    const orphanFeatures = files
      .map((relative) => relative.split(path.sep))
      .filter((parts) => parts[0] !== "services" && (TOP as ReadonlyArray<string>).includes(parts[0]!) && parts.length > 2)
      .map((parts) => parts[1]!.replace(/^apps$/, "apps"))
      .filter((feature) => !features.has(feature))
    expect([...new Set(orphanFeatures)]).toEqual([])
  })
})
