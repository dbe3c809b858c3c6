import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import autocannon from "autocannon"

/**
 * npm run bench:http: autocannon against the app's liveness and readiness probes and against a
 * bare node:http server answering the same JSON, in one run on this machine. Each server runs in
 * its own process; the load generator runs here. BENCH_DURATION (s) and BENCH_CONNECTIONS tune it.
 */
const duration = Number(process.env["BENCH_DURATION"] ?? "10")
const connections = Number(process.env["BENCH_CONNECTIONS"] ?? "50")
const root = path.resolve(import.meta.dirname, "..")
const node = path.join(root, "node_modules/.bin/node")

const start = (entry: string, env: Record<string, string>) =>
  new Promise<{ child: ChildProcess; port: number }>((resolve, reject) => {
    const child = spawn(node, ["--import", "tsx", entry], {
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
        resolve({ child, port: Number(match[1] ?? match[2]) })
      }
    }
    child.stdout!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`${entry} exited with ${code}`)))
  })

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

const load = async (url: string, seconds: number) => {
  const result = await autocannon({ url, connections, duration: seconds, pipelining: 1 })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}

interface Row { readonly target: string; readonly rps: number; readonly p50: number; readonly p99: number; readonly errors: number }

const measure = async (name: string, base: string, paths: ReadonlyArray<string>): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const p of paths) {
    await load(base + p, 2) // warm-up: JIT, connection pools, readiness cache
    rows.push({ target: `${name} ${p}`, ...(await load(base + p, duration)) })
  }
  return rows
}

const main = async () => {
  const paths = ["/health/liveness", "/health/readiness"]
  const bare = await start("bench/bareServer.ts", {})
  const bareRows = await measure("bare node:http", `http://127.0.0.1:${bare.port}`, paths)
  await stop(bare.child)
  const app = await start("src/main.ts", {
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_FORMAT: "json",
    LOG_LEVEL: process.env["BENCH_LOG_LEVEL"] ?? "info",
    SHUTDOWN_DRAIN_DELAY: "0"
  })
  const appRows = await measure("lumiku", `http://127.0.0.1:${app.port}`, paths)
  await stop(app.child)

  const lines = [
    `node ${process.version}, ${connections} connections, ${duration} s per target, log level ${process.env["BENCH_LOG_LEVEL"] ?? "info"}`,
    "| target | req/s | p50 ms | p99 ms | errors | req/s vs bare |",
    "|---|---:|---:|---:|---:|---:|"
  ]
  for (const row of [...bareRows, ...appRows]) {
    const baseline = bareRows.find((b) => b.target.endsWith(row.target.split(" ").at(-1)!))!
    lines.push(`| ${row.target} | ${row.rps.toFixed(0)} | ${row.p50} | ${row.p99} | ${row.errors} | ${(row.rps / baseline.rps).toFixed(2)} |`)
  }
  process.stdout.write(lines.join("\n") + "\n")
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
