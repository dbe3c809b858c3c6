import { Queue } from "bullmq"
import { Deferred, Effect, Option } from "effect"
import { Redis as IORedis } from "ioredis"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { Ledger } from "../../src/services/credits/Ledger.js"
import { generationRetryRefusal, Generations, refundFor, ROW_LOCK_SPACE } from "../../src/services/generations/Generations.js"
import { JobQueues } from "../../src/services/jobs/JobQueues.js"
import { bullPrefix } from "../../src/services/jobs/queueNames.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { Storage } from "../../src/services/platform/Storage.js"
import { progressChannel } from "../../src/workers/jobs/runtime.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { eventually } from "../support/jobHarness.js"
import { type InProcessApp, type InProcessServices, startApp } from "../support/inProcessApp.js"
import { PrivateRedis } from "../support/redisServer.js"
import { FixtureJob, fixtureApp, fixtureHandler, held, otherApp, pids, renders } from "./fixtureApp.js"

const ADMIN_TOKEN = "generations-admin-token-0123456789abcdefghijklmnop"
const PASSWORD = "Correct-Horse-42"
const env = { ADMIN_TOKEN, RATE_LIMIT_REGISTER: "1000 per 1 minute", RATE_LIMIT_GENERAL: "10000 per 1 minute" }

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("refund rounding", () => {
  it("refunds the undelivered share of what was charged, rounded up in the user's favour, exactly", () => {
    expect(refundFor(10, 4, 1)).toBe(8) // 7.5 -> 8: the user pays 2 for one unit of four
    expect(refundFor(10, 3, 1)).toBe(7) // 6.67 -> 7
    expect(refundFor(10, 4, 0)).toBe(10)
    expect(refundFor(10, 4, 4)).toBe(0)
    expect(refundFor(0, 4, 1)).toBe(0) // an enterprise charge of 0 refunds 0: never minted
    expect(refundFor(Number.MAX_SAFE_INTEGER, 3, 1)).toBe(6004799503160661) // exact past 2^53 intermediates
  })
})

describe("the generation flow with a fixture app", () => {
  let app: InProcessApp
  let db: pg.Pool
  let redis: IORedis
  let queue: Queue
  const run = <A, E>(effect: Effect.Effect<A, E, InProcessServices>) => Effect.runPromise(Effect.provide(effect, app.context))
  const generations = <A, E>(f: (g: Generations) => Effect.Effect<A, E, InProcessServices>) => run(Effect.flatMap(Generations, f))

  /** A registered user (100 welcome credits) moved to `credits`, with a token. */
  const newUser = async (credits: number) => {
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("gen"), password: PASSWORD })
    expect(r.status).toBe(201)
    const id = r.body["data"].user.id as string
    const token = r.body["data"].token as string
    if (credits !== 100) {
      await run(Effect.flatMap(Ledger, (ledger) =>
        credits > 100
          ? ledger.credit({ userId: id, amount: credits - 100, key: `seed:${id}`, kind: "bonus", reason: "test" })
          : ledger.debit({ userId: id, amount: 100 - credits, key: `seed:${id}`, kind: "adjustment", reason: "test" })))
    }
    return { id, token }
  }
  const balance = (userId: string) => run(Effect.flatMap(Ledger, (l) => l.balance(userId)))
  const ledgerRows = async (userId: string) =>
    (await db.query<{ kind: string; delta: string }>("SELECT kind, delta FROM credit_ledger WHERE user_id = $1 ORDER BY id", [userId])).rows
      .map((r) => `${r.kind}:${r.delta}`)
  const row = async (id: string) => (await db.query("SELECT * FROM generations WHERE id = $1", [id])).rows[0]
  const settled = (id: string, status: string) =>
    eventually(async () => ((await row(id))?.status === status ? row(id) : undefined), 10_000, `generation ${status}`)
  const create = (userId: string, settings: Record<string, unknown>, units = 3, cost = 30) =>
    generations((g) => g.create({ userId, app: fixtureApp.appId, units, cost, settings }))

  beforeAll(async () => {
    app = await startApp(testEnv(env), { jobHandlers: [fixtureHandler], apps: [fixtureApp, otherApp] })
    db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
    const config = await run(AppConfig)
    redis = new IORedis({ host: config.redis.host, port: config.redis.port, maxRetriesPerRequest: null })
    queue = new Queue(FixtureJob.queue, { connection: redis, prefix: bullPrefix(config) })
  })
  afterAll(async () => {
    await queue?.close()
    redis?.disconnect()
    await db?.end()
    await app?.close()
  })

  it("charges at create, reports progress forwards only, and completes with every unit", async () => {
    const user = await newUser(100)
    const created = await create(user.id, { mode: "hold" })
    expect(created).toMatchObject({ status: "pending", charged: 30, refunded: 0, unitsRequested: 3, creditCost: 30 })
    expect(typeof created.seed).toBe("number")
    expect(await balance(user.id)).toBe(70)
    await eventually(async () => (held.has(created.id) ? true : undefined), 10_000, "render started")
    expect((await row(created.id)).status).toBe("processing")
    expect((await row(created.id)).started_at).not.toBeNull()

    expect(await generations((g) => g.progress(created.id, 60, 2))).toBe(true)
    expect(await generations((g) => g.progress(created.id, 20, 1))).toBe(true)
    expect(await row(created.id)).toMatchObject({ progress: 60, units_delivered: 2 })

    // Progress also reaches the user's progress channel (for the web app's live updates).
    const config = await run(AppConfig)
    const subscriber = redis.duplicate()
    const messages: Array<Record<string, unknown>> = []
    subscriber.on("message", (_channel, message: string) => messages.push(JSON.parse(message)))
    await subscriber.subscribe(progressChannel(config.redis.keyPrefix, user.id))
    try {
      await Effect.runPromise(Deferred.succeed(held.get(created.id)!, undefined))
      await eventually(async () => (messages.some((m) => m["percent"] === 100) ? true : undefined), 5_000, "progress published")
      expect(messages.find((m) => m["percent"] === 100)).toMatchObject({
        type: "progress", jobId: created.id, generationId: created.id, percent: 100, delivered: 3
      })
      // Its settlement follows on the same channel, once committed.
      await eventually(async () => messages.find((m) => m["type"] === "completed"), 5_000, "completion published")
      expect(messages.find((m) => m["type"] === "completed")).toMatchObject({
        generationId: created.id, status: "completed", progress: 100, unitsDelivered: 3, refunded: 0, errorCode: null
      })
    } finally {
      subscriber.disconnect()
    }
    const done = await settled(created.id, "completed")
    expect(done).toMatchObject({ progress: 100, units_delivered: 3, refunded: "0", charged: "30", error_code: null })
    expect(done.completed_at).not.toBeNull()
    expect(done.outputs).toHaveLength(3)
    for (const output of done.outputs as Array<{ key: string }>) {
      expect(await run(Effect.flatMap(Storage, (s) => s.exists(output.key)))).toBe(true)
    }
    expect(await balance(user.id)).toBe(70)
    expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:-30"])
    // A late progress or completion of a settled generation changes nothing.
    expect(await generations((g) => g.progress(created.id, 10, 0))).toBe(false)
    expect(Option.isNone(await generations((g) => g.complete(created.id, [], 1)))).toBe(true)
    expect(await row(created.id)).toMatchObject({ status: "completed", units_delivered: 3, progress: 100 })
  })

  it("a partial delivery refunds the undelivered share once, in the completing transaction", async () => {
    const user = await newUser(100)
    const created = await create(user.id, { mode: "partial", deliver: 1 }, 4, 10)
    const done = await settled(created.id, "partial")
    expect(done).toMatchObject({ units_delivered: 1, refunded: "8", charged: "10" })
    expect(done.outputs).toHaveLength(1)
    expect(await balance(user.id)).toBe(98)
    // One partial refund of the charge: the undelivered 3 of 4 units, 7.5 credits rounded up for the user.
    expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10", "refund:8"])
    const listed = await call(app, "GET", "/api/generations", undefined, bearer(user.token))
    expect(listed.body["generations"][0]).toMatchObject({ id: created.id, status: "partial", creditUsed: 2, fileCount: 1 })
  })

  it("a cancel racing a partial completion: exactly one settles, and the ledger moves once", async () => {
    const user = await newUser(100)
    const created = await create(user.id, { mode: "hold" }, 4, 40)
    await eventually(async () => (held.has(created.id) ? true : undefined), 10_000, "render started")
    const [completed, cancelled] = await Promise.all([
      generations((g) => g.complete(created.id, [{ key: "x.txt", size: 1 }], 1)),
      Effect.runPromise(Effect.either(Effect.provide(Effect.flatMap(Generations, (g) => g.cancel(created.id, user.id)), app.context)))
    ])
    const final = await row(created.id)
    if (Option.isSome(completed)) {
      expect(cancelled._tag === "Left" && cancelled.left._tag).toBe("GenerationFinished")
      expect(final).toMatchObject({ status: "partial", refunded: "30" })
      expect(await balance(user.id)).toBe(90)
      expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:-40", "refund:30"])
    } else {
      expect(cancelled._tag).toBe("Right")
      expect(final).toMatchObject({ status: "cancelled", refunded: "40" })
      expect(await balance(user.id)).toBe(100)
      expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:-40", "refund:40"])
    }
  })

  it("a completion that delivered nothing is a failure, refunded in full", async () => {
    const user = await newUser(100)
    const created = await create(user.id, { mode: "partial", deliver: 0 }, 4, 10)
    const done = await settled(created.id, "failed")
    expect(done).toMatchObject({ units_delivered: 0, refunded: "10", error_code: "NO_OUTPUT", outputs: [] })
    expect(await balance(user.id)).toBe(100)
    expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10", "refund:10"])
  })

  it("a dead letter whose payload no longer decodes still fails and refunds its generation", async () => {
    const user = await newUser(100)
    await queue.pause()
    try {
      const created = await create(user.id, { mode: "ok" })
      await queue.remove(created.id)
      await run(fixtureHandler.compensateUndecodable!({ generationId: created.id }, {
        jobId: created.id,
        jobClass: "timeout",
        reason: "timed out",
        lastError: { tag: "JobTimeout", message: "timeout" },
        encodedPayload: { generationId: created.id }
      }))
      expect(await row(created.id)).toMatchObject({ status: "failed", error_code: "GENERATION_TIMEOUT", refunded: "30" })
      expect(await balance(user.id)).toBe(100)
    } finally {
      await queue.resume()
    }
  })

  it("a user exempt from usage charges is charged 0 and refunded 0: a partial delivery mints nothing", async () => {
    const user = await newUser(100)
    await db.query("UPDATE users SET tags = array['enterprise_unlimited'] WHERE id = $1", [user.id])
    const created = await create(user.id, { mode: "partial", deliver: 1 }, 4, 10)
    expect(created).toMatchObject({ charged: 0, creditCost: 10 })
    expect(await settled(created.id, "partial")).toMatchObject({ charged: "0", refunded: "0" })
    expect(await balance(user.id)).toBe(100)
    expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:0"])
  })

  it("a job that fails for good is failed and refunded by its compensation, exactly once; its dead letter cannot be retried", async () => {
    const user = await newUser(100)
    const created = await create(user.id, { mode: "fail" })
    expect(await balance(user.id)).toBe(70)
    const failed = await settled(created.id, "failed")
    expect(failed).toMatchObject({ refunded: "30", error_code: "GENERATION_FAILED" })
    expect(failed.error_message).toMatch(/refunded/)
    await eventually(async () => ((await balance(user.id)) === 100 ? true : undefined), 5_000, "refund")
    // The compensation delivered again (a crash after it ran, say): nothing changes.
    await run(fixtureHandler.compensate!({ generationId: created.id, userId: user.id }, {
      jobId: created.id,
      jobClass: "permanent",
      reason: "again",
      lastError: { tag: "JobPermanent", message: "again" },
      encodedPayload: { generationId: created.id, userId: user.id }
    }))
    await run(fixtureHandler.compensateUndecodable!({ generationId: created.id, legacy: true }, {
      jobId: created.id,
      jobClass: "timeout",
      reason: "again",
      lastError: { tag: "JobTimeout", message: "again" },
      encodedPayload: { generationId: created.id, legacy: true }
    }))
    expect(Option.isNone(await generations((g) => g.fail(created.id, "X", "again")))).toBe(true)
    expect(await row(created.id)).toMatchObject({ status: "failed", error_code: "GENERATION_FAILED", refunded: "30" })
    expect(await balance(user.id)).toBe(100)
    expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:-30", "refund:30"])
    expect(renders.get(created.id)).toBe(1)

    // Refused, not re-charged: the user was told it failed and got the credits back.
    const retry = await call(app, "POST", `/api/admin/queues/${FixtureJob.queue}/dead-letters/${created.id}/retry`, undefined, bearer(ADMIN_TOKEN))
    expect(retry.status).toBe(409)
    expect(retry.body).toMatchObject({ success: false, code: "CONFLICT" })
    expect(retry.body["message"]).toMatch(/already failed/)
    const letter = await run(Effect.flatMap(JobQueues, (q) => Effect.option(q.deadLetters.get(FixtureJob.queue, created.id))))
    expect(Option.isSome(letter)).toBe(true)
    expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:-30", "refund:30"])
  })

  it("cancel mid-run kills the render's ffmpeg, refunds once, and a late completion is ignored", async () => {
    const user = await newUser(100)
    const created = await create(user.id, { mode: "ffmpeg" })
    const pid = await eventually(async () => pids.get(created.id), 10_000, "ffmpeg started")
    expect(alive(pid)).toBe(true)
    const cancelled = await call(app, "POST", `/api/generations/${created.id}/cancel`, undefined, bearer(user.token))
    expect(cancelled.status).toBe(200)
    expect(cancelled.body["generation"]).toMatchObject({ id: created.id, status: "cancelled", creditUsed: 0 })
    await eventually(async () => (alive(pid) ? undefined : true), 3_000, "ffmpeg gone")
    expect(await balance(user.id)).toBe(100)
    // The job ends without a retry or a failure: the render was stopped, not failed.
    await eventually(async () => ((await queue.getJob(created.id))?.finishedOn ? true : undefined), 5_000, "job finished")
    expect(await (await queue.getJob(created.id))!.getState()).toBe("completed")
    expect(Option.isNone(await generations((g) => g.complete(created.id, [{ key: "late.txt", size: 1 }], 3)))).toBe(true)
    expect(await generations((g) => g.progress(created.id, 90, 2))).toBe(false)
    expect(Option.isNone(await generations((g) => g.fail(created.id, "X", "late")))).toBe(true)
    expect(await row(created.id)).toMatchObject({ status: "cancelled", refunded: "30", outputs: [], units_delivered: 0 })
    expect(await ledgerRows(user.id)).toEqual(["bonus:100", "usage:-30", "refund:30"])
    expect(renders.get(created.id)).toBe(1)
    // Cancelling again is a conflict, not a second refund.
    const again = await call(app, "POST", `/api/generations/${created.id}/cancel`, undefined, bearer(user.token))
    expect(again.status).toBe(409)
    expect(again.body).toMatchObject({ success: false, code: "GENERATION_FINISHED", generationStatus: "cancelled" })
    expect(await balance(user.id)).toBe(100)
  })

  it("cancel of a pending generation takes its job off the queue and refunds it", async () => {
    const user = await newUser(100)
    await queue.pause()
    try {
      const created = await create(user.id, { mode: "ok" })
      expect(await (await queue.getJob(created.id))!.getState()).toBe("waiting") // paused queues report their jobs as waiting
      const cancelled = await generations((g) => g.cancel(created.id, user.id))
      expect(cancelled.status).toBe("cancelled")
      expect(await queue.getJob(created.id)).toBeUndefined()
      expect(await balance(user.id)).toBe(100)
      expect(renders.get(created.id)).toBeUndefined()
    } finally {
      await queue.resume()
    }
  })

  it("402 with required and current credits when the balance does not cover the cost; nothing stored", async () => {
    const user = await newUser(20)
    const result = await Effect.runPromise(Effect.either(Effect.provide(
      Effect.flatMap(Generations, (g) => g.create({ userId: user.id, app: fixtureApp.appId, units: 1, cost: 30, settings: {} })),
      app.context
    )))
    expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "InsufficientCredits", required: 30, current: 20 })
    expect((await db.query("SELECT count(*)::int AS n FROM generations WHERE user_id = $1", [user.id])).rows[0].n).toBe(0)
    expect(await balance(user.id)).toBe(20)
  })

  it("bad create input is a 400-class error, not a defect: unknown app, a coming-soon app's queue, bad units or cost", async () => {
    const user = await newUser(100)
    const attempt = (params: { app: string; units: number; cost: number; projectId?: string; seed?: number }) =>
      Effect.runPromise(Effect.either(Effect.provide(
        Effect.flatMap(Generations, (g) => g.create({ userId: user.id, settings: {}, ...params })),
        app.context
      )))
    const fixture = { app: fixtureApp.appId, units: 1, cost: 1 }
    const bad = [
      { ...fixture, app: "nope" },
      { ...fixture, app: otherApp.appId },
      { ...fixture, units: 0 },
      { ...fixture, units: 1.5 },
      { ...fixture, cost: 0 },
      { ...fixture, projectId: "p1" },
      { ...fixture, seed: -1 },
      { ...fixture, seed: 0.5 }
    ]
    for (const params of bad) {
      const result = await attempt(params)
      expect(result._tag === "Left" && result.left._tag).toBe("ValidationError")
    }
    expect(await balance(user.id)).toBe(100)
  })

  it("two creates racing on a balance that covers one: exactly one is charged and stored", async () => {
    const user = await newUser(50)
    const results = await Promise.all([0, 1].map(() =>
      Effect.runPromise(Effect.either(Effect.provide(
        Effect.flatMap(Generations, (g) => g.create({ userId: user.id, app: fixtureApp.appId, units: 1, cost: 30, settings: { mode: "ok" } })),
        app.context
      )))))
    expect(results.filter((r) => r._tag === "Right")).toHaveLength(1)
    expect(results.filter((r) => r._tag === "Left" && r.left._tag === "InsufficientCredits")).toHaveLength(1)
    expect((await db.query("SELECT count(*)::int AS n FROM generations WHERE user_id = $1", [user.id])).rows[0].n).toBe(1)
    expect(await balance(user.id)).toBe(20)
  })

  it("a job whose generation never committed does nothing", async () => {
    const ghost = "00000000-0000-4000-8000-00000000dead"
    await run(Effect.flatMap(JobQueues, (q) => q.enqueue(FixtureJob, ghost, { generationId: ghost, userId: ghost })))
    await eventually(async () => ((await queue.getJob(ghost))?.finishedOn ? true : undefined), 5_000, "job finished")
    expect(await (await queue.getJob(ghost))!.getState()).toBe("completed")
    expect(renders.get(ghost)).toBeUndefined()
    expect(await row(ghost)).toBeUndefined()
  })

  it("a job taken before its create commits waits for the commit, then runs", async () => {
    // Create enqueues inside its transaction, so a worker can take the job before the row is visible.
    const user = await newUser(100)
    const id = "00000000-0000-4000-8000-0000000c0de1"
    const client = await db.connect()
    try {
      await client.query("BEGIN")
      await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [ROW_LOCK_SPACE, id])
      await client.query(
        "INSERT INTO generations (id, user_id, app, units_requested, credit_cost, charged, settings) VALUES ($1, $2, 'fixture-render', 1, 10, 0, '{\"mode\":\"ok\"}')",
        [id, user.id]
      )
      await run(Effect.flatMap(JobQueues, (q) => q.enqueue(FixtureJob, id, { generationId: id, userId: user.id })))
      await eventually(async () => ((await queue.getJob(id))?.processedOn ? true : undefined), 5_000, "job taken")
      await new Promise((resolve) => setTimeout(resolve, 300))
      await client.query("COMMIT")
    } finally {
      client.release()
    }
    await settled(id, "completed")
    expect(renders.get(id)).toBe(1)
  })

  it("the dead-letter retry guard allows a generation still holding its charge and refuses a settled or unknown one", async () => {
    const user = await newUser(100)
    await queue.pause()
    try {
      const created = await create(user.id, { mode: "ok" })
      expect(await run(generationRetryRefusal(created.id))).toBeUndefined()
      await generations((g) => g.cancel(created.id, user.id))
      expect(await run(generationRetryRefusal(created.id))).toMatch(/already cancelled/)
      expect(await run(generationRetryRefusal("00000000-0000-4000-8000-000000000000"))).toMatch(/does not exist/)
      expect(await run(generationRetryRefusal("x"))).toMatch(/no generation/)
    } finally {
      await queue.resume()
    }
  })

  it("lists, sorts, filters and limits the caller's generations in the web app's shape; recent is flat", async () => {
    const owner = await newUser(1000)
    const other = await newUser(100)
    const ids: Array<string> = []
    for (let i = 0; i < 3; i++) {
      const created = await create(owner.id, { mode: "ok" }, 2, 10)
      ids.push(created.id)
      await settled(created.id, "completed")
    }
    const list = await call(app, "GET", "/api/generations?app=fixture-render&sort=latest&limit=100", undefined, bearer(owner.token))
    expect(list.status).toBe(200)
    expect(list.body).toMatchObject({ success: true, total: 3, hasMore: false })
    expect(list.body["generations"].map((g: { id: string }) => g.id)).toEqual([...ids].reverse())
    const item = list.body["generations"][0]
    expect(item).toMatchObject({
      id: ids[2],
      appId: "fixture-render",
      appName: "Fixture Render",
      appIcon: "film",
      appColor: "purple",
      projectId: null,
      projectName: null,
      status: "completed",
      creditUsed: 10,
      fileCount: 2,
      progress: 100
    })
    expect(item.outputPaths).toEqual([`generations/${ids[2]}/1.txt`, `generations/${ids[2]}/2.txt`])
    expect(item.totalSize).toBeGreaterThan(0)
    expect(Date.parse(item.createdAt)).not.toBeNaN()
    expect(Date.parse(item.completedAt)).not.toBeNaN()

    const oldest = await call(app, "GET", "/api/generations?sort=oldest&limit=2", undefined, bearer(owner.token))
    expect(oldest.body).toMatchObject({ total: 3, hasMore: true })
    expect(oldest.body["generations"].map((g: { id: string }) => g.id)).toEqual(ids.slice(0, 2))
    const byName = await call(app, "GET", "/api/generations?sort=name", undefined, bearer(owner.token))
    expect(byName.body["generations"].map((g: { id: string }) => g.id)).toEqual([...ids].reverse())
    const none = await call(app, "GET", "/api/generations?app=zz-another", undefined, bearer(owner.token))
    expect(none.body).toMatchObject({ generations: [], total: 0, hasMore: false })

    const recent = await call(app, "GET", "/api/generations/recent?limit=2", undefined, bearer(owner.token))
    expect(recent.status).toBe(200)
    expect(Object.keys(recent.body).sort()).toEqual(["generations", "success"])
    expect(recent.body["generations"].map((g: { id: string }) => g.id)).toEqual([ids[2], ids[1]])
    expect((await call(app, "GET", "/api/generations/recent", undefined, bearer(owner.token))).body["generations"]).toHaveLength(3)

    // Nobody sees another user's generations.
    const theirs = await call(app, "GET", "/api/generations", undefined, bearer(other.token))
    expect(theirs.body).toMatchObject({ generations: [], total: 0, hasMore: false })
    expect((await call(app, "GET", "/api/generations/recent", undefined, bearer(other.token))).body["generations"]).toEqual([])
  })

  it("sort=name orders by the app's name (an app no longer offered by its id), newest first within an app", async () => {
    const user = await newUser(100)
    const created = await create(user.id, { mode: "ok" }, 1, 10)
    await settled(created.id, "completed")
    const insert = (id: string, appId: string) =>
      db.query(
        "INSERT INTO generations (id, user_id, app, units_requested, credit_cost, charged, created_at) VALUES ($1, $2, $3, 1, 1, 0, now() - interval '1 day')",
        [id, user.id, appId]
      )
    const another = "00000000-0000-4000-8000-0000000000a1"
    const retired = "00000000-0000-4000-8000-0000000000a2"
    await insert(another, "zz-another")
    await insert(retired, "aaa-retired")
    const ids = async (sort: string) =>
      (await call(app, "GET", `/api/generations?sort=${sort}`, undefined, bearer(user.token))).body["generations"].map((g: { id: string }) => g.id)
    // by name "aaa-retired" < "another app" < "fixture render"; by id "zz-another" would be last
    expect(await ids("name")).toEqual([retired, another, created.id])
    expect((await ids("latest"))[0]).toBe(created.id)
    const listed = await call(app, "GET", "/api/generations?app=aaa-retired", undefined, bearer(user.token))
    expect(listed.body["generations"][0]).toMatchObject({ appId: "aaa-retired", appName: "aaa-retired", appIcon: "layers", appColor: "blue" })
  })

  it("rejects bad query parameters with a 400 in the one error body, and unauthenticated calls with a 401", async () => {
    const user = await newUser(100)
    for (const query of ["sort=newest", "limit=0", "limit=101", "limit=abc", "limit=1.5", "app=Bad%20App", "limit=-1"]) {
      const r = await call(app, "GET", `/api/generations?${query}`, undefined, bearer(user.token))
      expect(r.status, query).toBe(400)
      expect(r.body).toMatchObject({ success: false, code: "VALIDATION_ERROR" })
      expect(typeof r.body["requestId"]).toBe("string")
    }
    expect((await call(app, "GET", "/api/generations/recent?limit=51", undefined, bearer(user.token))).status).toBe(400)
    expect((await call(app, "DELETE", "/api/generations/not-a-uuid", undefined, bearer(user.token))).status).toBe(400)
    expect((await call(app, "GET", "/api/generations")).status).toBe(401)
    expect((await call(app, "GET", "/api/apps")).status).toBe(401)
  })

  it("DELETE removes the owner's generation and its outputs; another user gets 404; a running one is cancelled and refunded first", async () => {
    const owner = await newUser(100)
    const other = await newUser(100)
    const created = await create(owner.id, { mode: "ok" }, 2, 10)
    const done = await settled(created.id, "completed")
    const keys = (done.outputs as Array<{ key: string }>).map((o) => o.key)

    const foreign = await call(app, "DELETE", `/api/generations/${created.id}`, undefined, bearer(other.token))
    expect(foreign.status).toBe(404)
    expect(foreign.body).toMatchObject({ success: false, code: "GENERATION_NOT_FOUND" })
    expect(await row(created.id)).toBeDefined()

    const removed = await call(app, "DELETE", `/api/generations/${created.id}?appId=fixture-render`, undefined, bearer(owner.token))
    expect(removed.status).toBe(200)
    expect(removed.body).toEqual({ success: true })
    expect(await row(created.id)).toBeUndefined()
    for (const key of keys) expect(await run(Effect.flatMap(Storage, (s) => s.exists(key)))).toBe(false)
    expect((await call(app, "DELETE", `/api/generations/${created.id}`, undefined, bearer(owner.token))).status).toBe(404)

    const running = await create(owner.id, { mode: "hold" }, 1, 10)
    await eventually(async () => (held.has(running.id) ? true : undefined), 10_000, "render started")
    expect(await balance(owner.id)).toBe(80)
    expect((await call(app, "DELETE", `/api/generations/${running.id}`, undefined, bearer(owner.token))).status).toBe(200)
    expect(await row(running.id)).toBeUndefined()
    expect(await balance(owner.id)).toBe(90)
    expect(await ledgerRows(owner.id)).toEqual(["bonus:100", "usage:-10", "usage:-10", "refund:10"])
  })

  it("GET /api/apps lists the registered apps flat, in dashboard order", async () => {
    const user = await newUser(100)
    const r = await call(app, "GET", "/api/apps", undefined, bearer(user.token))
    expect(r.status).toBe(200)
    expect(r.body).toEqual({
      success: true,
      apps: [
        { appId: "zz-another", name: "Another App", description: "Listed first", icon: "video", color: "blue", order: 1, beta: false, comingSoon: true },
        { appId: "fixture-render", name: "Fixture Render", description: "Renders test outputs", icon: "film", color: "purple", order: 2, beta: true, comingSoon: false }
      ]
    })
  })
})

describe("creating a generation while the queue is down", () => {
  it("answers 503-class GenerationsUnavailable with nothing stored and the balance unchanged", async () => {
    const redis = await PrivateRedis.start()
    const app = await startApp(testEnv({ ...env, REDIS_PORT: String(redis.port) }), { jobHandlers: [fixtureHandler], apps: [fixtureApp] })
    const db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 1 })
    try {
      const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("down"), password: PASSWORD })
      const userId = r.body["data"].user.id as string
      await redis.stop()
      const result = await Effect.runPromise(Effect.either(Effect.provide(
        Effect.flatMap(Generations, (g) => g.create({ userId, app: fixtureApp.appId, units: 1, cost: 30, settings: {} })),
        app.context
      )))
      expect(result._tag === "Left" && result.left._tag).toBe("GenerationsUnavailable")
      expect((await db.query("SELECT count(*)::int AS n FROM generations WHERE user_id = $1", [userId])).rows[0].n).toBe(0)
      expect((await db.query("SELECT balance::int AS b FROM users WHERE id = $1", [userId])).rows[0].b).toBe(100)
      expect((await db.query("SELECT count(*)::int AS n FROM credit_ledger WHERE user_id = $1", [userId])).rows[0].n).toBe(1)
    } finally {
      await db.end()
      await app.close()
      await redis.stop()
    }
  })
})
