import { existsSync, readdirSync, readFileSync } from "node:fs"
import path from "node:path"
import { describe, expect, it } from "vitest"

/**
 * The README is the map of the tree: every source path it names exists, and its "Where things live"
 * table lists every folder of src with every module in it, so the map cannot drift from the tree.
 */
const root = path.resolve(import.meta.dirname, "../..")
const readme = readFileSync(path.join(root, "README.md"), "utf8")

const section = (title: string) => {
  const start = readme.indexOf(`## ${title}`)
  const end = readme.indexOf("\n## ", start + 1)
  return readme.slice(start, end === -1 ? undefined : end)
}

/** A named path exists relative to the repository, or to src (the README names src paths without it). */
const exists = (named: string) => [root, path.join(root, "src")].some((base) => existsSync(path.join(base, named)))

/** Each row of the map: `| \`src/<folder>/\` | what | \`A.ts\` \`B.ts\` |`. */
export const mapRows = (text: string) =>
  [...text.matchAll(/^\|\s*`(src\/[^`]*)`\s*\|[^|]*\|([^|]*)\|/gm)].map((match) => ({
    folder: match[1]!.replace(/\/$/, ""),
    files: [...match[2]!.matchAll(/`([^`]+)`/g)].map((file) => file[1]!)
  }))

const sourceFolders = (dir: string): Array<string> => [
  dir,
  ...readdirSync(path.join(root, dir), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => sourceFolders(`${dir}/${entry.name}`))
]

describe("the README", () => {
  it("every source path it names exists", () => {
    const named = [...readme.matchAll(/`((?:src|test|bench|scripts|services|layers|http|workers|migrations)\/[\w./-]+\.ts)`/g)].map((m) => m[1]!)
    expect(named.length).toBeGreaterThan(10)
    expect(named.filter((file) => !exists(file))).toEqual([])
  })

  it("\"Where things live\" lists every folder of src holding modules, and every module in it", () => {
    const rows = mapRows(section("Where things live"))
    const listed = new Map(rows.map((row) => [row.folder, row.files]))
    const missing: Array<string> = []
    for (const folder of sourceFolders("src")) {
      const files = readdirSync(path.join(root, folder)).filter((name) => name.endsWith(".ts"))
      const row = listed.get(folder)
      if (files.length === 0) continue
      if (row === undefined) missing.push(`${folder}/ (folder)`)
      else missing.push(...files.filter((file) => !row.includes(file)).map((file) => `${folder}/${file}`))
    }
    const stale = rows.flatMap((row) => row.files.filter((file) => !existsSync(path.join(root, row.folder, file))).map((file) => `${row.folder}/${file}`))
    expect({ missing, stale }).toEqual({ missing: [], stale: [] })
  })
})
