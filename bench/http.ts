import { load as loadWith, start, stop } from "./serverProcess.js"

/**
 * npm run bench:http: autocannon against the app's liveness and readiness probes and against a
 * bare node:http server answering the same JSON, in one run on this machine. Each server runs in
 * its own process; the load generator runs here. BENCH_DURATION (s), BENCH_CONNECTIONS and
 * BENCH_ROUNDS (bare and lumiku alternate, each round compared within itself) tune it.
 */
const duration = Number(process.env["BENCH_DURATION"] ?? "10")
const rounds = Number(process.env["BENCH_ROUNDS"] ?? "2")
const connections = Number(process.env["BENCH_CONNECTIONS"] ?? "50")
const load = (url: string, seconds: number, pid?: number) => loadWith(url, seconds, connections, { pid })

interface Row {
  readonly round?: number
  readonly target: string
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
  readonly cpuUsPerRequest?: number
}

const measure = async (name: string, base: string, paths: ReadonlyArray<string>, pid: number | undefined): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const p of paths) {
    await load(base + p, 2) // warm-up: JIT, connection pools, readiness cache
    rows.push({ target: `${name} ${p}`, ...(await load(base + p, duration, pid)) })
  }
  return rows
}

const main = async () => {
  const paths = ["/health/liveness", "/health/readiness"]
  const rows: Array<Row & { round: number }> = []
  for (let round = 1; round <= rounds; round++) {
    const bare = await start("bench/bareServer.ts", {})
    rows.push(...(await measure("bare node:http", `http://127.0.0.1:${bare.port}`, paths, bare.child.pid)).map((r) => ({ ...r, round })))
    await stop(bare.child)
    const app = await start("src/main.ts", {
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_FORMAT: "json",
      LOG_LEVEL: process.env["BENCH_LOG_LEVEL"] ?? "info",
      SHUTDOWN_DRAIN_DELAY: "0"
    })
    rows.push(...(await measure("lumiku", `http://127.0.0.1:${app.port}`, paths, app.child.pid)).map((r) => ({ ...r, round })))
    await stop(app.child)
  }

  const lines = [
    `node ${process.version}, ${connections} connections, ${duration} s per target, ${rounds} alternating rounds, log level ${process.env["BENCH_LOG_LEVEL"] ?? "info"}`,
    "| round | target | req/s | p50 ms | p99 ms | errors | req/s vs bare | server CPU us/req |",
    "|---:|---|---:|---:|---:|---:|---:|---:|"
  ]
  for (const row of rows) {
    const baseline = rows.find((b) => b.round === row.round && b.target.startsWith("bare") && b.target.endsWith(row.target.split(" ").at(-1)!))!
    lines.push(`| ${row.round} | ${row.target} | ${row.rps.toFixed(0)} | ${row.p50} | ${row.p99} | ${row.errors} | ${(row.rps / baseline.rps).toFixed(2)} | ${row.cpuUsPerRequest?.toFixed(1) ?? ""} |`)
  }
  process.stdout.write(lines.join("\n") + "\n")
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
