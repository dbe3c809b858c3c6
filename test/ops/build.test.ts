import { execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, describe, expect, it } from "vitest"
import { testEnv } from "../support/env.js"

const root = path.resolve(import.meta.dirname, "../..")
const nodeBin = path.join(root, "node_modules/.bin/node")

describe("npm run build", () => {
  // Inside the repository, so the compiled files resolve node_modules as dist/ does in the image.
  const outDir = mkdtempSync(path.join(root, ".build-test-"))
  afterAll(() => rmSync(outDir, { recursive: true, force: true }))

  it("compiles to JavaScript that starts without tsx, serves liveness and exits 0 on SIGTERM", async () => {
    await promisify(execFile)(nodeBin, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", outDir], { cwd: root })
    // No loader: plain node on the compiled entry, as the image runs it.
    const child = spawn(nodeBin, [path.join(outDir, "src/main.js")], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/root", ...testEnv({ ROLE: "api" }), LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const port = await new Promise<number>((resolve, reject) => {
      let buffer = ""
      child.stdout.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("utf8")
        const match = /"msg":"lumiku-backend listening"[^\n]*"port":(\d+)|"port":(\d+)[^\n]*"msg":"lumiku-backend listening"/.exec(buffer)
        if (match !== null) resolve(Number(match[1] ?? match[2]))
      })
      void exited.then((code) => reject(new Error(`exited ${code} before listening: ${buffer}`)))
      setTimeout(() => reject(new Error(`not listening within 60 s: ${buffer}`)), 60_000)
    })
    const live = await fetch(`http://127.0.0.1:${port}/health/liveness`)
    expect(live.status).toBe(200)
    expect(await live.json()).toEqual({ status: "ok" })
    child.kill("SIGTERM")
    expect(await exited).toBe(0)
  }, 240_000)
})
