import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Queue } from "bullmq"
import { Redis as IORedis } from "ioredis"
import pg from "pg"
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest"
import { testEnv } from "../support/env.js"
import { eventually } from "../support/jobHarness.js"
import { killAll, spawnServer } from "../support/spawnServer.js"
import { createFixtureTables, truncateFixtureTables } from "../support/fixtureTables.js"

/**
 * Shutdown bounds of the real process (test/fixtures/server.ts) with jobs running: at the budget
 * active jobs are interrupted and left for stalled recovery, their ffmpeg process groups are
 * killed, and the process exits on time with no child left behind.
 */
const db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
const events = async (kind: string) =>
  (await db.query<{ job_id: string; pid: number }>("SELECT job_id, pid FROM fixture_job_events WHERE kind = $1 ORDER BY at", [kind])).rows
const post = (url: string) => fetch(url, { method: "POST" })

const statOf = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: state!, ppid: Number(ppid) }
  } catch {
    return undefined
  }
}
/**
 * Dead: `kill(pid, 0)` fails with ESRCH, or the process is a zombie (this machine's init does not
 * reap the orphans of an exited process, and a zombie still answers signal 0).
 */
const isGone = (pid: number) => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH"
  }
  return statOf(pid)?.state === "Z"
}
const childrenOf = (pid: number) =>
  readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => statOf(p)?.ppid === pid && !isGone(p))

/** The real ffmpeg as a child of a shell (not exec'd), so the job's ffmpeg has a child of its own. */
const wrapperDir = mkdtempSync(path.join(tmpdir(), "lumiku-ffmpeg-wrapper-"))
const ffmpegWithChild = () => {
  let real: string
  try {
    real = execFileSync("sh", ["-c", "command -v ffmpeg"]).toString().trim()
  } catch {
    real = (createRequire(import.meta.url)("@ffmpeg-installer/ffmpeg") as { path: string }).path
  }
  const script = path.join(wrapperDir, "ffmpeg")
  writeFileSync(script, `#!/bin/sh\n"${real}" "$@" &\nwait $!\n`, { mode: 0o755 })
  return script
}

describe("shutdown bounds with jobs running (real processes)", () => {
  const connection = new IORedis({ host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null })
  beforeAll(() => createFixtureTables(db))
  afterEach(async () => {
    killAll()
    await truncateFixtureTables(db)
  })
  afterAll(async () => {
    connection.disconnect()
    await db.end()
    rmSync(wrapperDir, { recursive: true, force: true })
  })

  it("SIGTERM with a 20 s job and an ffmpeg job, SHUTDOWN_TIMEOUT 4 s: both interrupted, exit 0 before the cap, ffmpeg and its child gone at once, the job recovered by another worker", async () => {
    const env = testEnv({
      REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}release-cap:`,
      SHUTDOWN_TIMEOUT: "4000",
      JOB_LOCK_DURATION: "2000",
      JOB_STALLED_INTERVAL: "1000",
      FFMPEG_PATH: ffmpegWithChild()
    })
    const first = await spawnServer(env)
    expect((await post(first.url("/__test/enqueue?id=cap-slow&ms=20000"))).status).toBe(202)
    expect((await post(first.url("/__test/enqueue?id=cap-ff&ms=60000&kind=ffmpeg"))).status).toBe(202)
    const [ffmpegStart] = await eventually(async () => {
      const rows = await events("ffmpeg")
      return rows.length === 1 && (await events("start")).length === 2 ? rows : undefined
    }, 15_000, "both jobs running")
    const leader = ffmpegStart!.pid
    const helpers = await eventually(async () => {
      const kids = childrenOf(leader)
      return kids.length > 0 ? kids : undefined
    }, 5_000, "ffmpeg under its wrapper")
    const signalAt = Date.now()
    first.child.kill("SIGTERM")
    const exit = await first.exited
    const tookMs = exit.at - signalAt
    // The jobs get the cap minus 1.5 s (2.5 s), then are interrupted; the rest of the release is quick.
    expect(exit.code).toBe(0)
    expect(tookMs).toBeGreaterThanOrEqual(2_000)
    expect(tookMs).toBeLessThan(4_000)
    await new Promise((r) => setTimeout(r, 100))
    expect([leader, ...helpers].filter((pid) => !isGone(pid))).toEqual([])
    const messages = first.logs().map((l) => String(l["msg"]))
    expect(messages.some((m) => m.includes("interrupting active jobs, left for stalled recovery"))).toBe(true)
    expect(messages.some((m) => m.startsWith("shutdown.forced"))).toBe(false)
    expect(await events("done")).toEqual([])

    // Left active, with no attempt used: neither failed nor completed.
    const queue = new Queue("slow-test", { connection, prefix: `${env["REDIS_KEY_PREFIX"]}bull` })
    try {
      const job = await queue.getJob("cap-slow")
      expect(await job?.getState()).toBe("active")
      expect(job?.attemptsMade).toBe(0)
      const second = await spawnServer(env)
      await eventually(async () => {
        const starts = await events("start")
        return starts.some((e) => e.job_id === "cap-slow" && e.pid === second.child.pid) ? true : undefined
      }, 20_000, "stalled recovery in the second worker")
      expect((await queue.getJob("cap-slow"))?.stalledCounter).toBe(1)
      second.child.kill("SIGTERM")
      expect((await second.exited).code).toBe(0)
    } finally {
      await queue.close()
    }
  }, 60_000)

  it("a forced exit at the cap (a request outlives it) still kills the running ffmpeg group", async () => {
    const env = testEnv({ REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}release-forced:`, SHUTDOWN_TIMEOUT: "2000", FFMPEG_PATH: ffmpegWithChild() })
    const server = await spawnServer(env)
    expect((await post(server.url("/__test/enqueue?id=forced-ff&ms=60000&kind=ffmpeg"))).status).toBe(202)
    const [ffmpegStart] = await eventually(async () => {
      const rows = await events("ffmpeg")
      return rows.length === 1 ? rows : undefined
    }, 15_000, "ffmpeg running")
    const leader = ffmpegStart!.pid
    const helpers = await eventually(async () => {
      const kids = childrenOf(leader)
      return kids.length > 0 ? kids : undefined
    }, 5_000, "ffmpeg under its wrapper")
    const stuck = fetch(server.url("/__test/sleep?ms=60000")).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 300))
    server.child.kill("SIGTERM")
    const exit = await server.exited
    expect(exit.code).toBe(1)
    expect(server.logs().some((l) => String(l["msg"]).startsWith("shutdown.forced"))).toBe(true)
    await new Promise((r) => setTimeout(r, 100))
    expect([leader, ...helpers].filter((pid) => !isGone(pid))).toEqual([])
    await stuck
  }, 30_000)

  it("a stdout nobody reads holds neither the graceful exit nor the forced one", async () => {
    for (const forced of [false, true]) {
      const server = await spawnServer(testEnv({ SHUTDOWN_TIMEOUT: "2000" }))
      // The reader stops: the pipe fills, and the logger's buffer can never drain.
      server.child.stdout!.pause()
      const agent = { keepalive: true }
      for (let i = 0; i < 30; i++) {
        await Promise.all(Array.from({ length: 50 }, () => fetch(server.url("/health/liveness"), agent).then((r) => r.text())))
      }
      const stuck = forced ? fetch(server.url("/__test/sleep?ms=60000")).catch(() => undefined) : undefined
      await new Promise((r) => setTimeout(r, 200))
      const signalAt = Date.now()
      server.child.kill("SIGTERM")
      const exit = await Promise.race([
        server.exited,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 8_000))
      ])
      expect(exit, forced ? "forced exit" : "graceful exit").toBeDefined()
      expect(exit!.code).toBe(forced ? 1 : 0)
      // graceful: the release, then at most 0.45 s of flushing; forced: the 2 s cap, then as much
      expect(exit!.at - signalAt).toBeLessThan(forced ? 3_500 : 2_500)
      server.child.stdout!.resume()
      await stuck
    }
  }, 60_000)

  it("a worker killed by SIGKILL takes its ffmpeg with it", async () => {
    const server = await spawnServer(testEnv({ REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}release-sigkill:` }))
    expect((await post(server.url("/__test/enqueue?id=killed-ff&ms=60000&kind=ffmpeg"))).status).toBe(202)
    const [ffmpegStart] = await eventually(async () => {
      const rows = await events("ffmpeg")
      return rows.length === 1 ? rows : undefined
    }, 15_000, "ffmpeg running")
    const ffmpegPid = ffmpegStart!.pid
    expect(isGone(ffmpegPid)).toBe(false)
    server.child.kill("SIGKILL")
    await server.exited
    // No code of ours runs after SIGKILL: the kernel delivers the parent-death signal.
    await eventually(async () => (isGone(ffmpegPid) ? true : undefined), 1_000, "ffmpeg gone")
  }, 30_000)
})
