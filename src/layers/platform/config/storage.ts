import * as path from "node:path"
import { section } from "./section.js"
import { text } from "./variable.js"

export const storageSection = section("Storage", {
  dir: text({ name: "STORAGE_DIR", default: "./data/storage", description: "directory of stored files (resolved from the working directory)" })
}, (v) => ({ dir: path.resolve(v.dir) }))
