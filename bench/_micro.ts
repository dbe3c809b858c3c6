import { Effect } from "effect"
import { SqlClient } from "@effect/sql"
import pg from "pg"
import { startApp } from "../test/support/inProcessApp.js"
import { VideoMixer } from "../src/services/videoMixer/VideoMixer.js"
import { JobQueues } from "../src/services/jobs/JobQueues.js"
import { readFileSync } from "node:fs"
import { VideoMixerJob } from "../src/services/videoMixer/VideoMixerApp.js"

const app = await startApp({ RATE_LIMIT_REGISTER: "1000 per 1 minute", RATE_LIMIT_GENERAL: "1000000 per 1 minute", RATE_LIMIT_VIDEO_MIXER_GENERATE: "1000000 per 1 minute", ROLE: "api", LOG_LEVEL: "error", NODE_ENV: "development" })
const reg = await (await fetch(app.url("/api/auth/register"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: `micro-${Date.now()}@bench.example`, password: "bench-password-1234", name: "Micro" }) })).json() as any
const token = reg.data.token, userId = reg.data.user.id
const headers = { authorization: `Bearer ${token}` }
const proj = await (await fetch(app.url("/api/apps/video-mixer/projects"), { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ name: "m" }) })).json() as any
const projectId = proj.project.id
const form = new FormData(); form.append("projectId", projectId); form.append("file", new Blob([readFileSync(process.env["CLIP"]!)], { type: "video/mp4" }), "clip.mp4")
const up = await fetch(app.url("/api/apps/video-mixer/videos/upload"), { method: "POST", headers, body: form }); if (up.status !== 201) throw new Error(await up.text())
const client = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/lumiku" }); await client.connect().catch(async () => {})
const SETTINGS = { enableOrderMixing: false, enableDifferentStart: false, enableGroupMixing: false, groupMixingMode: "sequential", enableSpeedVariations: false, speedMin: 1, speedMax: 1, metadataSource: "capcut", videoBitrate: "low", videoResolution: "480p", frameRate: 24, aspectRatio: "16:9", durationType: "original", smartDistribution: false, distributionMode: "equal", audioOption: "keep" }
const run = (eff: Effect.Effect<any, any, any>) => Effect.runPromise(eff.pipe(Effect.provide(app.context)) as Effect.Effect<any, any, never>)
await run(Effect.gen(function*() { const sql = yield* SqlClient.SqlClient; yield* sql`UPDATE users SET balance = 100000000 WHERE id = ${userId}` }))
const measure = async (name: string, n: number, f: () => Promise<unknown>) => {
  for (let i = 0; i < 200; i++) await f()
  const c = process.cpuUsage(), t = performance.now()
  for (let i = 0; i < n; i++) await f()
  const d = process.cpuUsage(c)
  console.log(name.padEnd(28), ((d.user + d.system) / n).toFixed(0).padStart(6), "us cpu", ((performance.now() - t) * 1000 / n).toFixed(0).padStart(6), "us wall")
}
const payload: any = { projectId, totalVideos: 1, settings: SETTINGS }
const N = Number(process.env["N"] ?? 2000)
const which = (process.env["WHICH"] ?? "all").split(",")
const want = (k: string) => which.includes("all") || which.includes(k)
if (want("gen")) await measure("mixer.generate", N, () => run(Effect.flatMap(VideoMixer, (m) => m.generate(userId, payload))))
if (want("sql")) await measure("sql SELECT 1", N, () => run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1`)))
if (want("tx")) await measure("sql tx SELECT 1", N, () => run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(sql`SELECT 1`))))
if (want("enq")) await measure("queues.enqueue", N, () => run(Effect.flatMap(JobQueues, (q) => q.enqueue(VideoMixerJob as any, crypto.randomUUID(), { generationId: crypto.randomUUID(), userId } as any, { fresh: true }))))
const pool = new pg.Pool({ connectionString: "postgres://postgres@127.0.0.1:5432/lumiku", max: 10 })
if (want("rawsql")) await measure("raw pg SELECT 1", N, () => pool.query("SELECT 1"))
if (want("rawtx")) await measure("raw pg tx SELECT 1", N, async () => { const c = await pool.connect(); await c.query("BEGIN"); await c.query("SELECT 1"); await c.query("COMMIT"); c.release() })
if (want("async")) await measure("Effect.async pool.query", N, () => run(Effect.async<unknown>((resume) => { pool.query("SELECT 1", (e: unknown, r: unknown) => resume(e ? Effect.die(e) : Effect.succeed(r))) })))
if (want("unsafe")) await measure("sql.unsafe SELECT 1", N, () => run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe("SELECT 1"))))
if (want("noop")) await measure("runPromise noop", N, () => run(Effect.void))
if (want("http")) {
  const body = JSON.stringify(payload)
  const probe = await fetch(app.url("/api/apps/video-mixer/generate"), { method: "POST", headers: { ...headers, "content-type": "application/json" }, body })
  console.log("probe", probe.status, (await probe.text()).slice(0, 300))
  const statuses = new Map<number, number>()
  await measure("HTTP generate", N, () => fetch(app.url("/api/apps/video-mixer/generate"), { method: "POST", headers: { ...headers, "content-type": "application/json" }, body }).then((r) => { statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1); return r.text() }))
  console.log("statuses", [...statuses])
  await measure("HTTP balance", N, () => fetch(app.url("/api/credits/balance"), { headers }).then((r) => r.text()))
}
const st = (globalThis as any).__st; if (st) { const tot = Object.values(st).reduce((a: any, b: any) => a + b, 0) as number; for (const k of Object.keys(st).sort()) console.log(k.padEnd(12), (st[k] / (N + 200)).toFixed(0), "us") ; console.log("sum", (tot / (N + 200)).toFixed(0)) }
await app.close(); process.exit(0)
