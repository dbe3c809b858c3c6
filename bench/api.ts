import type { ChildProcess } from "node:child_process"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { Effect, Option } from "effect"
import { Redis } from "ioredis"
import pg from "pg"
import { resolveBinary } from "../src/layers/platform/FfmpegLive.js"
import { mixSettings } from "../test/videoMixer/settings.js"
import { type Load, load, type Server, start, stop } from "./serverProcess.js"

/**
 * npm run bench:api: this project against the Fastify + pg + ioredis + jose + BullMQ peer
 * (bench/peer/server.ts), one database, one Redis, the same users' tokens, alternating rounds, on
 * - the read: GET /api/credits/balance;
 * - the write through the ledger: POST /api/apps/video-mixer/generate (one output at 480p, 1 credit:
 *   the project locked, the clip snapshot, the charge, the generation row, the job enqueued).
 * The per-user limits are raised so neither answers 429, but both still run their sliding-window
 * scripts on every request. The project runs with ROLE=api (no worker renders the jobs: both queues
 * only fill, and are emptied at the end).
 * BENCH_DURATION (s), BENCH_CONNECTIONS, BENCH_ROUNDS, BENCH_USERS tune it; BENCH_ENDPOINTS=read or
 * write runs one; BENCH_CPU_PROF=dir writes CPU profiles of both servers (node --cpu-prof), one per round.
 */
const env = process.env
const duration = Number(env["BENCH_DURATION"] ?? "8")
const connections = Number(env["BENCH_CONNECTIONS"] ?? "50")
const rounds = Number(env["BENCH_ROUNDS"] ?? "2")
const userCount = Number(env["BENCH_USERS"] ?? "8")
const endpoints = (env["BENCH_ENDPOINTS"] ?? "read,write").split(",")
const cpuProf = env["BENCH_CPU_PROF"]

const databaseUrl = env["BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/lumiku_bench"
const shared = {
  DATABASE_URL: databaseUrl,
  JWT_SECRET: randomBytes(32).toString("base64url"),
  DB_POOL_SIZE: "10"
}
const REDIS_PREFIX = "lumiku-bench:"
const projectEnv = {
  ...shared,
  PORT: "0",
  HOST: "127.0.0.1",
  ROLE: "api",
  LOG_FORMAT: "json",
  LOG_LEVEL: "info",
  SHUTDOWN_DRAIN_DELAY: "0",
  REDIS_KEY_PREFIX: REDIS_PREFIX,
  RATE_LIMIT_GENERAL: "1000000 per 1 minute",
  RATE_LIMIT_VIDEO_MIXER_GENERATE: "1000000 per 1 minute",
  RATE_LIMIT_REGISTER: "1000 per 1 minute",
  RATE_LIMIT_UPLOAD: "1000 per 1 minute",
  RATE_LIMIT_PROJECT_CREATE: "1000 per 1 minute",
  NODE_ENV: "development"
}

/** Every server started, so a failed run stops them too. */
const started: Array<ChildProcess> = []
const track = (server: Promise<Server>) => server.then((s) => (started.push(s.child), s))

const profile = (name: string) => cpuProf === undefined ? [] : [`--cpu-prof`, `--cpu-prof-dir=${cpuProf}`, `--cpu-prof-name=${name}.cpuprofile`]
const projectArgs = (env["BENCH_PROJECT_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== "")
const startProject = (round: number) => track(start("src/main.ts", projectEnv, [...projectArgs, ...profile(`project-${round}`)]))
const startPeer = (round?: number) =>
  track(start("bench/peer/server.ts", { ...shared, PEER_LIMIT: "1000000" }, round === undefined ? [] : profile(`peer-${round}`)))

interface BenchUser {
  readonly headers: Record<string, string>
  readonly projectId: string
}

const json = async (response: Response, expected: number, what: string) => {
  const body = await response.json() as Record<string, any> // the project's answers, checked field by field below
  if (response.status !== expected) throw new Error(`${what} answered ${response.status}: ${JSON.stringify(body)}`)
  return body
}

/** A 1-second lavfi clip, made with the ffmpeg the app resolves (a fresh machine has none on the PATH). */
const makeClip = async () => {
  const ffmpeg = await Effect.runPromise(resolveBinary("ffmpeg", "FFMPEG_PATH", Option.fromNullable(env["FFMPEG_PATH"])))
  const dir = mkdtempSync(path.join(tmpdir(), "lumiku-bench-"))
  const file = path.join(dir, "clip.mp4")
  await promisify(execFile)(ffmpeg.path, [
    "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=15",
    "-f", "lavfi", "-i", "sine=duration=1", "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", file
  ])
  const bytes = readFileSync(file)
  rmSync(dir, { recursive: true, force: true })
  return bytes
}

/**
 * Registers the bench users on the project (their tokens work on both servers: same secret and tables),
 * gives each a Video Mixer project with one clip, and enough credits for every generate of the run.
 */
const setUp = async (project: Server): Promise<Array<BenchUser>> => {
  const clip = await makeClip()
  const users: Array<BenchUser> = []
  for (let i = 0; i < userCount; i++) {
    const registered = await json(await fetch(`${project.base}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: `bench-${Date.now()}-${i}@bench.example`, password: "bench-password-1234", name: `Bench ${i}` })
    }), 201, "register")
    const headers = { authorization: `Bearer ${registered["data"].token}` }
    const created = await json(await fetch(`${project.base}/api/apps/video-mixer/projects`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ name: `Bench ${i}`, description: "bench:api" })
    }), 201, "create project")
    const projectId = String(created["project"].id)
    const form = new FormData()
    form.append("projectId", projectId)
    form.append("file", new Blob([clip], { type: "video/mp4" }), "clip.mp4")
    await json(await fetch(`${project.base}/api/apps/video-mixer/videos/upload`, { method: "POST", headers, body: form }), 201, "upload")
    users.push({ headers, projectId })
  }
  // Credits for the writes, through the ledger's own shape (one bonus row per user, the balance it leaves).
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  await client.query(`
    WITH moved AS (UPDATE users SET balance = balance + 100000000 WHERE email LIKE 'bench-%@bench.example' RETURNING id, balance)
    INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, idempotency_key, requested_amount)
    SELECT id, 100000000, balance, 'bonus', 'bench:api credits', 'bench:' || id || ':' || $1, 100000000 FROM moved`, [Date.now()])
  await client.end()
  return users
}

/** The cheapest generation: one output at 480p, no mixing options (1 credit). */
const SETTINGS = mixSettings({ frameRate: 24, aspectRatio: "16:9" })
const generateBody = (user: BenchUser) => JSON.stringify({ projectId: user.projectId, totalVideos: 1, settings: SETTINGS })

interface Endpoint {
  readonly name: string
  readonly method: "GET" | "POST"
  readonly path: string
  readonly body?: (user: BenchUser) => string
}
const ENDPOINTS: ReadonlyArray<Endpoint & { readonly key: string }> = [
  { key: "read", name: "GET /api/credits/balance", method: "GET", path: "/api/credits/balance" },
  { key: "write", name: "POST /api/apps/video-mixer/generate", method: "POST", path: "/api/apps/video-mixer/generate", body: generateBody }
]

/** Both must give the same answer (the write: the same fields and charge) before they are compared. */
const sameAnswers = async (project: Server, peer: Server, user: BenchUser) => {
  const [a, b] = await Promise.all([project, peer].map((s) => fetch(`${s.base}/api/credits/balance`, { headers: user.headers }).then((r) => r.text())))
  if (a !== b) throw new Error(`the two answer the read differently: ${a} vs ${b}`)
  const write = (s: Server) =>
    fetch(`${s.base}/api/apps/video-mixer/generate`, {
      method: "POST",
      headers: { ...user.headers, "content-type": "application/json" },
      body: generateBody(user)
    }).then((r) => json(r, 201, "generate"))
  const [x, y] = [await write(project), await write(peer)]
  const shape = (body: Record<string, any>) => ({ keys: Object.keys(body["generation"]).sort(), creditUsed: body["creditUsed"], status: body["generation"].status })
  if (JSON.stringify(shape(x)) !== JSON.stringify(shape(y))) {
    throw new Error(`the two answer the write differently: ${JSON.stringify(shape(x))} vs ${JSON.stringify(shape(y))}`)
  }
  if (y["creditBalance"] !== x["creditBalance"] - x["creditUsed"]) throw new Error("the peer's balance does not follow the project's charge")
}

/** Both servers' queued jobs and the bench's windows, left in Redis by a run. */
const clearRedis = async () => {
  const redis = new Redis({ host: "127.0.0.1", port: 6379 })
  for (const pattern of [`${REDIS_PREFIX}*`, "lumiku-bench-peer*"]) {
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== "0")
  }
  await redis.quit()
}

const step = (what: string) => process.stderr.write(`bench:api ${new Date().toISOString().slice(11, 19)} ${what}\n`)

interface Row { readonly endpoint: string; readonly target: "lumiku" | "fastify peer"; readonly round: number; readonly result: Load }

const run = async (server: Server, users: ReadonlyArray<BenchUser>, endpoint: Endpoint) => {
  const url = `${server.base}${endpoint.path}`
  const options = {
    method: endpoint.method,
    headers: users.map((u) => endpoint.body === undefined ? u.headers : { ...u.headers, "content-type": "application/json" }),
    ...(endpoint.body === undefined ? {} : { body: (index: number) => endpoint.body!(users[index % users.length]!) })
  }
  await load(url, 2, connections, options) // warm-up: JIT, pools
  return load(url, duration, connections, { ...options, pid: server.child.pid })
}

const main = async () => {
  await clearRedis()
  const rows: Array<Row> = []
  const selected = ENDPOINTS.filter((e) => endpoints.includes(e.key))
  let users: Array<BenchUser> = []
  for (let round = 1; round <= rounds; round++) {
    step(`round ${round}: starting the project`)
    const project = await startProject(round)
    if (users.length === 0) {
      step("registering users, their projects and clips")
      users = await setUp(project)
      const peer = await startPeer()
      step("checking both answer alike")
      await sameAnswers(project, peer, users[0]!)
      await stop(peer.child)
    }
    for (const endpoint of selected) {
      step(`lumiku ${endpoint.name}`)
      rows.push({ endpoint: endpoint.name, target: "lumiku", round, result: await run(project, users, endpoint) })
    }
    await stop(project.child)
    step(`round ${round}: starting the peer`)
    const peer = await startPeer(round)
    for (const endpoint of selected) {
      step(`peer ${endpoint.name}`)
      rows.push({ endpoint: endpoint.name, target: "fastify peer", round, result: await run(peer, users, endpoint) })
    }
    await stop(peer.child)
  }
  const lines = [
    `node ${process.version}, ${connections} connections, ${duration} s per target, ${rounds} alternating rounds, ${userCount} users`,
    "| endpoint | round | target | req/s | p50 ms | p99 ms | errors | req/s vs peer | p99 vs peer | server CPU us/req | CPU vs peer |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  ]
  for (const endpoint of selected) {
    for (const row of rows.filter((r) => r.endpoint === endpoint.name)) {
      const peer = rows.find((r) => r.endpoint === row.endpoint && r.round === row.round && r.target === "fastify peer")!.result
      const { cpuUsPerRequest: cpu, errors, p50, p99, rps } = row.result
      const cpuRatio = cpu === undefined || peer.cpuUsPerRequest === undefined ? "" : (cpu / peer.cpuUsPerRequest).toFixed(2)
      lines.push(
        `| ${row.endpoint} | ${row.round} | ${row.target} | ${rps.toFixed(0)} | ${p50} | ${p99} | ${errors} | ${(rps / peer.rps).toFixed(2)} | ` +
          `${(p99 / peer.p99).toFixed(2)} | ${cpu?.toFixed(0) ?? ""} | ${cpuRatio} |`
      )
    }
  }
  process.stdout.write(lines.join("\n") + "\n")
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exitCode = 1
}).finally(() => Promise.all(started.map((child) => stop(child))).then(clearRedis))
