import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import autocannon from "autocannon"

/** What the HTTP benchmarks share: starting a server process, stopping it, loading it with autocannon. */
export const root = path.resolve(import.meta.dirname, "..")
const node = path.join(root, "node_modules/.bin/node")

export interface Server { readonly child: ChildProcess; readonly port: number; readonly base: string }

/** Starts `entry` (tsx) and resolves once it logs "lumiku-backend listening" with its port. */
export const start = (entry: string, env: Record<string, string>, nodeArgs: ReadonlyArray<string> = []) =>
  new Promise<Server>((resolve, reject) => {
    const child = spawn(node, [...nodeArgs, "--import", "tsx", entry], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let buffer = ""
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString()
      const match = /"port":(\d+)[^\n]*"msg":"lumiku-backend listening"|"msg":"lumiku-backend listening"[^\n]*"port":(\d+)/.exec(buffer)
      if (match) {
        child.stdout!.off("data", onData)
        child.stdout!.resume() // keep draining the access log so the server never blocks on stdout
        const port = Number(match[1] ?? match[2])
        resolve({ child, port, base: `http://127.0.0.1:${port}` })
      }
    }
    child.stdout!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`${entry} exited with ${code}`)))
  })

export const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

export interface Load { readonly rps: number; readonly p50: number; readonly p99: number; readonly errors: number }

/** autocannon at `connections`; `headers` rotates per request when given several sets. */
export const load = async (
  url: string,
  seconds: number,
  connections: number,
  options: { readonly method?: "GET" | "POST"; readonly headers?: ReadonlyArray<Record<string, string>>; readonly body?: string } = {}
): Promise<Load> => {
  let next = 0
  const sets = options.headers ?? [{}]
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    pipelining: 1,
    method: options.method ?? "GET",
    ...(options.body === undefined ? {} : { body: options.body }),
    requests: [{
      setupRequest: (request) => {
        const headers = sets[next++ % sets.length]!
        return { ...request, headers: { ...request.headers, ...headers } }
      }
    }]
  })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}
