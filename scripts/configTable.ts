/**
 * `npm run docs:config`: rewrites the README's configuration tables (between the config markers)
 * from the section files in src/layers/platform/config/.
 */
import { readFileSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { Either } from "effect"
import { renderConfigTable, withTable } from "../src/layers/platform/config/table.js"

const readmePath = path.resolve(import.meta.dirname, "../README.md")
const before = readFileSync(readmePath, "utf8")
const after = withTable(before, renderConfigTable())
if (Either.isLeft(after)) {
  process.stderr.write(`${after.left}\n`)
  process.exit(1)
}
if (after.right === before) {
  process.stdout.write("README.md configuration table is up to date\n")
} else {
  writeFileSync(readmePath, after.right)
  process.stdout.write("README.md configuration table rewritten\n")
}
