import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"

export interface SpawnedServer {
  readonly child: ChildProcess
  readonly port: number
  readonly url: (p: string) => string
  /** Every stdout/stderr line so far. */
  readonly lines: () => ReadonlyArray<string>
  readonly logs: () => ReadonlyArray<Record<string, unknown>>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

const root = path.resolve(import.meta.dirname, "../..")
const nodeBin = path.join(root, "node_modules/.bin/node")

/** Starts test/fixtures/server.ts (the real app plus test routes) and waits until it listens. */
const running = new Set<ChildProcess>()

/** SIGKILLs every server a test left running (after a failed assertion, say). */
export const killAll = () => {
  for (const child of running) child.kill("SIGKILL")
  running.clear()
}

export const spawnServer = async (env: Record<string, string>, entry = "test/fixtures/server.ts"): Promise<SpawnedServer> => {
  const child = spawn(nodeBin, ["--import", "tsx", entry], {
    cwd: root,
    // The startup line that carries the port is logged at info.
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/root", ...env, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  running.add(child)
  child.once("exit", () => running.delete(child))
  const lines: Array<string> = []
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: Date.now() }))
  )
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = ""
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString("utf8")
      let nl: number
      while ((nl = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        lines.push(line)
        try {
          const parsed = JSON.parse(line) as { msg?: string; port?: number }
          if (parsed.msg === "lumiku-backend listening" && typeof parsed.port === "number") resolve(parsed.port)
        } catch {
          // not a JSON log line
        }
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    void exited.then(({ code }) => reject(new Error(`server exited with ${code} before listening:\n${lines.join("\n")}`)))
    setTimeout(() => reject(new Error(`server did not listen within 20 s:\n${lines.join("\n")}`)), 20_000).unref()
  })
  return {
    child,
    port,
    url: (p) => `http://127.0.0.1:${port}${p}`,
    lines: () => lines,
    logs: () =>
      lines.flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>]
        } catch {
          return []
        }
      }),
    exited
  }
}

/** Runs an entry to completion (for processes expected to exit on their own). */
export const runToExit = (env: Record<string, string>, entry = "src/main.ts", timeoutMs = 20_000) =>
  new Promise<{ code: number | null; output: string; elapsedMs: number }>((resolve, reject) => {
    const start = Date.now()
    const child = spawn(nodeBin, ["--import", "tsx", entry], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/root", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")))
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`did not exit within ${timeoutMs} ms:\n${output}`))
    }, timeoutMs)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output, elapsedMs: Date.now() - start })
    })
  })
