/**
 * `npm run docs:config`: rewrites the README's configuration tables (between the config markers)
 * and `.env.example` from the section files in src/layers/platform/config/.
 */
import { readFileSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { Either } from "effect"
import { renderEnvExample } from "../src/layers/platform/config/envExample.js"
import { renderConfigTable, withTable } from "../src/layers/platform/config/table.js"

const root = path.resolve(import.meta.dirname, "..")

const rewrite = (file: string, make: (before: string) => Either.Either<string, string>) => {
  const target = path.join(root, file)
  const before = readFileSync(target, "utf8")
  const after = make(before)
  if (Either.isLeft(after)) {
    process.stderr.write(`${after.left}\n`)
    process.exit(1)
  }
  if (after.right !== before) writeFileSync(target, after.right)
  process.stdout.write(`${file} ${after.right === before ? "is up to date" : "rewritten"}\n`)
}

rewrite("README.md", (before) => withTable(before, renderConfigTable()))
rewrite(".env.example", () => Either.right(renderEnvExample()))
