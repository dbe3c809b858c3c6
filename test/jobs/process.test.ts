import { Queue } from "bullmq"
import { Redis as IORedis } from "ioredis"
import pg from "pg"
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest"
import { testEnv } from "../support/env.js"
import { eventually } from "../support/jobHarness.js"
import { freePort, PrivateRedis } from "../support/redisServer.js"
import { killAll, spawnServer } from "../support/spawnServer.js"
import { createFixtureTables, truncateFixtureTables } from "../support/fixtureTables.js"

const db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
const events = async (kind: "start" | "done" | "comp-start" | "comp-done") =>
  (await db.query<{ job_id: string; pid: number }>("SELECT job_id, pid FROM fixture_job_events WHERE kind = $1 ORDER BY at", [kind])).rows
const ledgerOf = async (jobId: string) =>
  (await db.query<{ kind: string; delta: string }>(
    "SELECT l.kind, l.delta FROM credit_ledger l JOIN users u ON u.id = l.user_id WHERE u.email = $1 ORDER BY l.id",
    [`${jobId}@paid.example.com`]
  )).rows.map((r) => `${r.kind}:${r.delta}`)
const balanceOf = async (jobId: string) =>
  Number((await db.query<{ balance: string }>("SELECT balance FROM users WHERE email = $1", [`${jobId}@paid.example.com`])).rows[0]?.balance)

const post = (url: string) => fetch(url, { method: "POST" })

describe("workers as processes", () => {
  const connection = new IORedis({ host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null })
  beforeAll(() => createFixtureTables(db))
  afterEach(async () => {
    killAll()
    await truncateFixtureTables(db)
  })
  afterAll(async () => {
    await connection.quit()
    await db.end()
  })

  it("SIGTERM while 3 jobs are active and 10 wait: the 3 complete, no new one starts, the 10 stay waiting, exit 0", async () => {
    const adminToken = "jobs-process-admin-token-0123456789abcdefghij"
    const env = testEnv({ REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}sigterm:`, JOB_CONCURRENCY: "slow-test=3", ADMIN_TOKEN: adminToken })
    const server = await spawnServer(env)
    for (let i = 0; i < 13; i++) expect((await post(server.url(`/__test/enqueue?id=term-${i}&ms=2500`))).status).toBe(202)
    await eventually(async () => ((await events("start")).length >= 3 ? true : undefined), 10_000, "3 active jobs")
    // The detailed report shows each queue's counts, to an administrator.
    const report = (await fetch(server.url("/health"), { headers: { authorization: `Bearer ${adminToken}` } }).then((r) => r.json())) as { checks: Record<string, any> }
    expect(report.checks["queues"]).toMatchObject({ status: "up", counts: { "slow-test": { active: 3, waiting: 10, deadLettered: 0 } } })
    // and to nobody else: the public view keeps the check's status and latency only
    const anonymous = (await fetch(server.url("/health")).then((r) => r.json())) as { checks: Record<string, any> }
    expect(Object.keys(anonymous.checks["queues"]).sort()).toEqual(["latencyMs", "status"])
    server.child.kill("SIGTERM")
    const exit = await server.exited
    expect(exit.code).toBe(0)
    const started = await events("start")
    const done = await events("done")
    expect(started).toHaveLength(3)
    expect(done.map((e) => e.job_id).sort()).toEqual(started.map((e) => e.job_id).sort())
    const queue = new Queue("slow-test", { connection, prefix: `${env["REDIS_KEY_PREFIX"]}bull` })
    const counts = await queue.getJobCounts("waiting", "active", "completed", "failed")
    await queue.close()
    expect(counts).toMatchObject({ waiting: 10, active: 0, completed: 3, failed: 0 })
    const stages = server.logs().map((l) => String(l["msg"]))
    expect(stages).toContain("shutdown.stage worker.close(slow-test) finished")
  }, 40_000)

  it("SIGKILL of a worker mid-job: another worker process recovers the stalled job and completes it; its side effect happens once", async () => {
    const env = testEnv({
      REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}sigkill:`,
      JOB_LOCK_DURATION: "2000",
      JOB_STALLED_INTERVAL: "1000"
    })
    const first = await spawnServer(env)
    expect((await post(first.url("/__test/enqueue?id=stall-1&ms=3000"))).status).toBe(202)
    await eventually(async () => ((await events("start")).length === 1 ? true : undefined), 10_000, "job start")
    first.child.kill("SIGKILL")
    await first.exited
    const second = await spawnServer(env)
    await eventually(async () => ((await events("done")).length === 1 ? true : undefined), 20_000, "recovered completion")
    const started = await events("start")
    const done = await events("done")
    expect(started.map((e) => e.pid)).toEqual([first.child.pid, second.child.pid])
    expect(done).toEqual([{ job_id: "stall-1", pid: second.child.pid }])
    await new Promise((r) => setTimeout(r, 1_500))
    expect(await events("done")).toHaveLength(1)
    second.child.kill("SIGTERM")
    expect((await second.exited).code).toBe(0)
  }, 60_000)

  it("SIGKILL of a worker mid-compensation: another worker process compensates again, the handler never runs again, one refund", async () => {
    const env = testEnv({ REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}compkill:`, JOB_LOCK_DURATION: "2000", JOB_STALLED_INTERVAL: "1000" })
    const first = await spawnServer(env)
    expect((await post(first.url("/__test/paid-enqueue?id=paid-kill&runMs=10&compMs=4000&fail=1"))).status).toBe(202)
    expect(await balanceOf("paid-kill")).toBe(40)
    await eventually(async () => ((await events("comp-start")).length === 1 ? true : undefined), 10_000, "compensation start")
    first.child.kill("SIGKILL")
    await first.exited
    expect(await events("comp-done")).toHaveLength(0)
    const second = await spawnServer(env)
    await eventually(async () => ((await events("comp-done")).length === 1 ? true : undefined), 25_000, "compensation after the crash")
    await new Promise((r) => setTimeout(r, 1_500))
    // the handler ran once, in the first process; compensation started in both and finished once, in the second
    expect((await events("start")).map((e) => e.pid)).toEqual([first.child.pid])
    expect((await events("comp-start")).map((e) => e.pid)).toEqual([first.child.pid, second.child.pid])
    expect((await events("comp-done")).map((e) => e.pid)).toEqual([second.child.pid])
    expect(await ledgerOf("paid-kill")).toEqual(["bonus:50", "usage:-10", "refund:10"])
    expect(await balanceOf("paid-kill")).toBe(50)
    const prefix = `${env["REDIS_KEY_PREFIX"]}bull`
    const main = new Queue("paid-test", { connection, prefix })
    const dlq = new Queue("paid-test-dlq", { connection, prefix })
    expect(await (await main.getJob("paid-kill"))?.getState()).toBe("failed")
    expect((await dlq.getJob("paid-kill"))?.data).toMatchObject({ jobId: "paid-kill", jobClass: "permanent" })
    await main.close()
    await dlq.close()
    second.child.kill("SIGTERM")
    expect((await second.exited).code).toBe(0)
  }, 60_000)

  it("a job that stalls twice (its worker SIGKILLed twice) is dead-lettered and compensated by the next worker, without running a third time", async () => {
    const env = testEnv({ REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}stall2:`, JOB_LOCK_DURATION: "2000", JOB_STALLED_INTERVAL: "1000" })
    const first = await spawnServer(env)
    expect((await post(first.url("/__test/paid-enqueue?id=paid-stall&runMs=30000&compMs=10&fail=0"))).status).toBe(202)
    await eventually(async () => ((await events("start")).length === 1 ? true : undefined), 10_000, "first start")
    first.child.kill("SIGKILL")
    await first.exited
    const second = await spawnServer(env)
    await eventually(async () => ((await events("start")).length === 2 ? true : undefined), 20_000, "second start after the stall")
    second.child.kill("SIGKILL")
    await second.exited
    const third = await spawnServer(env)
    await eventually(async () => ((await events("comp-done")).length === 1 ? true : undefined), 20_000, "compensation after the second stall")
    await new Promise((r) => setTimeout(r, 1_500))
    expect((await events("start")).map((e) => e.pid)).toEqual([first.child.pid, second.child.pid])
    expect(await ledgerOf("paid-stall")).toEqual(["bonus:50", "usage:-10", "refund:10"])
    const dlq = new Queue("paid-test-dlq", { connection, prefix: `${env["REDIS_KEY_PREFIX"]}bull` })
    const letter = (await dlq.getJob("paid-stall"))?.data as Record<string, unknown> | undefined
    await dlq.close()
    expect(letter).toMatchObject({ jobId: "paid-stall", jobClass: "transient" })
    expect(String(letter?.["reason"])).toContain("stalled 2 times")
    third.child.kill("SIGTERM")
    expect((await third.exited).code).toBe(0)
  }, 90_000)

  it("started while Redis is down: alive, not ready, enqueue 503 at once; ready and enqueuing once Redis comes", async () => {
    const redis = new PrivateRedis(await freePort())
    try {
      const server = await spawnServer(testEnv({ REDIS_PORT: String(redis.port) }))
      expect((await fetch(server.url("/health/liveness"))).status).toBe(200)
      expect((await fetch(server.url("/health/readiness"))).status).toBe(503)
      const start = performance.now()
      expect((await post(server.url("/__test/enqueue?id=too-early&ms=10"))).status).toBe(503)
      expect(performance.now() - start).toBeLessThan(1_500)
      await redis.start()
      await eventually(async () => ((await fetch(server.url("/health/readiness"))).status === 200 ? true : undefined), 15_000, "ready")
      await eventually(async () => ((await post(server.url(`/__test/enqueue?id=later-${Date.now()}&ms=10`))).status === 202 ? true : undefined), 15_000, "enqueue")
      await eventually(async () => ((await events("done")).length >= 1 ? true : undefined), 10_000, "job done")
      server.child.kill("SIGTERM")
      expect((await server.exited).code).toBe(0)
    } finally {
      await redis.stop()
    }
  }, 45_000)

  it("Redis stopped while enqueuing: 503 within 1 s, and no half-done state", async () => {
    const redis = await PrivateRedis.start()
    try {
      const server = await spawnServer(testEnv({ REDIS_PORT: String(redis.port) }))
      expect((await post(server.url("/__test/enqueue?id=before&ms=10"))).status).toBe(202)
      await redis.stop()
      const start = performance.now()
      const response = await post(server.url("/__test/enqueue?id=during-outage&ms=10"))
      const elapsed = performance.now() - start
      expect(response.status).toBe(503)
      expect(elapsed).toBeLessThan(1_000)
      const body = (await response.json()) as Record<string, unknown>
      expect(body).toMatchObject({ success: false, code: "SERVICE_UNAVAILABLE" })
      const orders = (await db.query<{ id: string }>("SELECT id FROM fixture_orders ORDER BY id")).rows.map((r) => r.id)
      expect(orders).toEqual(["before"])
      server.child.kill("SIGTERM")
      expect((await server.exited).code).toBe(0)
    } finally {
      await redis.stop()
    }
  }, 30_000)
})
