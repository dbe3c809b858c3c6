import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { type Load, load, type Server, start, stop } from "./serverProcess.js"

/**
 * npm run bench:api: GET /api/credits/balance on this project against the same endpoint on the
 * Fastify + pg + ioredis + jose peer (bench/peer/server.ts), one database, one Redis, the same
 * users' tokens, alternating rounds. The general per-user limit is raised so neither answers 429,
 * but both still run the sliding-window script on every request.
 * BENCH_DURATION (s), BENCH_CONNECTIONS, BENCH_ROUNDS, BENCH_USERS tune it; BENCH_CPU_PROF=dir
 * writes CPU profiles of the project and the peer (node --cpu-prof), one per round.
 */
const env = process.env
const duration = Number(env["BENCH_DURATION"] ?? "8")
const connections = Number(env["BENCH_CONNECTIONS"] ?? "50")
const rounds = Number(env["BENCH_ROUNDS"] ?? "2")
const userCount = Number(env["BENCH_USERS"] ?? "8")
const cpuProf = env["BENCH_CPU_PROF"]

const shared = {
  DATABASE_URL: env["BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/lumiku_bench",
  JWT_SECRET: randomBytes(32).toString("base64url"),
  DB_POOL_SIZE: "10"
}
const projectEnv = {
  ...shared,
  PORT: "0",
  HOST: "127.0.0.1",
  ROLE: "api",
  LOG_FORMAT: "json",
  LOG_LEVEL: "info",
  SHUTDOWN_DRAIN_DELAY: "0",
  REDIS_KEY_PREFIX: "lumiku-bench:",
  RATE_LIMIT_GENERAL: "1000000 per 1 minute",
  RATE_LIMIT_REGISTER: "1000 per 1 minute",
  NODE_ENV: "development"
}

/** Every server started, so a failed run stops them too. */
const started: Array<ChildProcess> = []
const track = (server: Promise<Server>) => server.then((s) => (started.push(s.child), s))

const profile = (name: string) => cpuProf === undefined ? [] : [`--cpu-prof`, `--cpu-prof-dir=${cpuProf}`, `--cpu-prof-name=${name}.cpuprofile`]
const startProject = (round: number) => track(start("src/main.ts", projectEnv, profile(`project-${round}`)))
const startPeer = (round?: number) =>
  track(start("bench/peer/server.ts", { ...shared, PEER_LIMIT: "1000000" }, round === undefined ? [] : profile(`peer-${round}`)))

/** Registers the bench users on the project; their tokens work on both servers (same secret and tables). */
const registerUsers = async (project: Server) => {
  const tokens: Array<string> = []
  for (let i = 0; i < userCount; i++) {
    const response = await fetch(`${project.base}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: `bench-${Date.now()}-${i}@bench.example`, password: "bench-password-1234", name: `Bench ${i}` })
    })
    const body = await response.json() as { data?: { token?: string } }
    if (response.status !== 201 || body.data?.token === undefined) throw new Error(`register answered ${response.status}`)
    tokens.push(body.data.token)
  }
  return tokens.map((token) => ({ authorization: `Bearer ${token}` }))
}

/** Both must answer the same body for the same user before they are compared. */
const sameAnswer = async (project: Server, peer: Server, headers: Record<string, string>) => {
  const [a, b] = await Promise.all([project, peer].map((s) => fetch(`${s.base}/api/credits/balance`, { headers }).then((r) => r.text())))
  if (a !== b) throw new Error(`the two answer differently: ${a} vs ${b}`)
}

interface Row { readonly target: string; readonly round: number; readonly result: Load }

const main = async () => {
  const rows: Array<Row> = []
  let headers: Array<Record<string, string>> = []
  for (let round = 1; round <= rounds; round++) {
    const project = await startProject(round)
    if (headers.length === 0) headers = await registerUsers(project)
    const peer = await startPeer()
    await sameAnswer(project, peer, headers[0]!)
    await stop(peer.child)
    for (const [name, server] of [["lumiku", project], ["fastify peer", null]] as const) {
      const target = server ?? await startPeer(round)
      const url = `${target.base}/api/credits/balance`
      await load(url, 2, connections, { headers }) // warm-up: JIT, pools
      rows.push({ target: `${name} GET /api/credits/balance`, round, result: await load(url, duration, connections, { headers, pid: target.child.pid }) })
      await stop(target.child)
    }
  }
  const lines = [
    `node ${process.version}, ${connections} connections, ${duration} s per target, ${rounds} alternating rounds, ${userCount} users`,
    "| round | target | req/s | p50 ms | p99 ms | errors | req/s vs peer | server CPU us/req | CPU vs peer |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
  ]
  for (const row of rows) {
    const peer = rows.find((r) => r.round === row.round && r.target.startsWith("fastify peer"))!
    const { cpuUsPerRequest: cpu, errors, p50, p99, rps } = row.result
    const peerCpu = peer.result.cpuUsPerRequest
    const cpuRatio = cpu === undefined || peerCpu === undefined ? "" : (cpu / peerCpu).toFixed(2)
    lines.push(
      `| ${row.round} | ${row.target} | ${rps.toFixed(0)} | ${p50} | ${p99} | ${errors} | ${(rps / peer.result.rps).toFixed(2)} | ${cpu?.toFixed(0) ?? ""} | ${cpuRatio} |`
    )
  }
  process.stdout.write(lines.join("\n") + "\n")
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exitCode = 1
}).finally(() => Promise.all(started.map((child) => stop(child))))
