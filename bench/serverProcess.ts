import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import autocannon from "autocannon"

/** What the HTTP benchmarks share: starting a server process, stopping it, loading it with autocannon. */
export const root = path.resolve(import.meta.dirname, "..")
const node = path.join(root, "node_modules/.bin/node")

export interface Server { readonly child: ChildProcess; readonly port: number; readonly base: string }

/**
 * Starts `entry` (tsx) and resolves once it logs "lumiku-backend listening" with its port. Its
 * stdout goes to a separate reader process, as a container runtime reads it: the load generator
 * (this process) never spends its own event loop on the server's log. The reader keeps the first
 * reads of the log in a temporary file (dd writes each read at once), where the port is read
 * from, and discards the rest.
 */
export const start = (entry: string, env: Record<string, string>, nodeArgs: ReadonlyArray<string> = []) =>
  new Promise<Server>((resolve, reject) => {
    const logFile = path.join(mkdtempSync(path.join(tmpdir(), "bench-log-")), "stdout.log")
    const reader = spawn("sh", ["-c", 'dd of="$0" bs=64k count=64 status=none; exec cat > /dev/null', logFile], { stdio: ["pipe", "ignore", "inherit"] })
    const child = spawn(node, [...nodeArgs, "--import", "tsx", entry], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", reader.stdin, "inherit"]
    })
    reader.stdin!.destroy() // the server holds the pipe's write end now; the reader sees its end
    child.once("exit", () => rmSync(path.dirname(logFile), { recursive: true, force: true }))
    let found = false
    const poll = setInterval(() => {
      const text = existsSync(logFile) ? readFileSync(logFile, "utf8") : ""
      const match = /"port":(\d+)[^\n]*"msg":"lumiku-backend listening"|"msg":"lumiku-backend listening"[^\n]*"port":(\d+)/.exec(text)
      if (match) {
        found = true
        clearInterval(poll)
        const port = Number(match[1] ?? match[2])
        resolve({ child, port, base: `http://127.0.0.1:${port}` })
      }
    }, 50)
    child.once("exit", (code) => {
      clearInterval(poll)
      if (!found) reject(new Error(`${entry} exited with ${code}`))
    })
  })

export const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

export interface Load {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
  /** The server's CPU time (user + system) per request served, in microseconds, when its pid was given. */
  readonly cpuUsPerRequest?: number
}

/**
 * A process' CPU time so far, in ms, from /proc (clock ticks of 10 ms). Unlike throughput it barely
 * moves when other processes share the cores, so it is the steadier figure on a busy machine.
 */
export const cpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** autocannon at `connections`; `headers` rotates per request when given several sets. */
export const load = async (
  url: string,
  seconds: number,
  connections: number,
  options: {
    readonly method?: "GET" | "POST"
    readonly headers?: ReadonlyArray<Record<string, string>>
    readonly body?: string | ((index: number) => string)
    /** The server's pid, for its CPU time per request. */
    readonly pid?: number | undefined
  } = {}
): Promise<Load> => {
  let next = 0
  const cpuBefore = options.pid === undefined ? 0 : cpuMs(options.pid)
  const sets = options.headers ?? [{}]
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    pipelining: 1,
    method: options.method ?? "GET",
    ...(typeof options.body === "string" ? { body: options.body } : {}),
    requests: [{
      setupRequest: (request) => {
        const index = next++
        const headers = sets[index % sets.length]!
        const body = typeof options.body === "function" ? { body: options.body(index) } : {}
        return { ...request, ...body, headers: { ...request.headers, ...headers } }
      }
    }]
  })
  const served = result.requests.total
  const cpu = options.pid === undefined || served === 0 ? {} : { cpuUsPerRequest: ((cpuMs(options.pid) - cpuBefore) * 1000) / served }
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx, ...cpu }
}
