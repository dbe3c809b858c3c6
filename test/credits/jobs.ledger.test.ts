import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { JobQueues } from "../../src/services/jobs/JobQueues.js"
import { defineJob } from "../../src/services/jobs/JobDefinition.js"
import { JobPermanent } from "../../src/services/jobs/JobError.js"
import { Ledger } from "../../src/services/credits/Ledger.js"
import type { AnyJobHandler } from "../../src/workers/jobs/runtime.js"
import { eventually, type JobHarness, startJobs } from "../support/jobHarness.js"
import { PrivateRedis } from "../support/redisServer.js"

// Reserve, then settle: the app charges when it accepts a job, in the transaction that creates the
// generation row; the job system's compensation refunds exactly that charge on terminal failure.
const Render = defineJob({
  queue: "render-test",
  payload: Schema.Struct({ generationId: Schema.String, fail: Schema.Boolean }),
  timeout: "10 seconds",
  concurrency: 2
})

const renderHandler: AnyJobHandler = {
  definition: Render,
  run: (payload) => (payload.fail ? Effect.fail(new JobPermanent({ reason: "unsupported media" })) : Effect.void),
  compensate: (payload) =>
    Effect.flatMap(Ledger, (ledger) => ledger.refund({ chargeKey: `gen:${payload.generationId}`, reason: "Render failed" }))
}

const accept = (userId: string, generationId: string, fail: boolean) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const sql = yield* SqlClient.SqlClient
    const queues = yield* JobQueues
    return yield* ledger.withCharge({ userId, amount: 10, key: `gen:${generationId}`, reason: "Render" }, () =>
      sql`INSERT INTO test_generations (id, user_id) VALUES (${generationId}, ${userId})`.pipe(
        Effect.zipRight(queues.enqueue(Render, generationId, { generationId, fail }))
      ))
  })

const newUser = (h: JobHarness, credits: number) =>
  h.run(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ledger = yield* Ledger
    const [row] = yield* sql<{ id: string }>`INSERT INTO users (email, password_hash) VALUES (${`jl-${Date.now()}-${Math.random()}@example.com`}, 'x') RETURNING id`
    yield* ledger.credit({ userId: row!.id, amount: credits, key: `seed:${row!.id}`, kind: "bonus", reason: "Test credits" })
    return row!.id
  }))

const state = (h: JobHarness, userId: string) =>
  h.run(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const balance = yield* Effect.flatMap(Ledger, (l) => l.balance(userId))
    const rows = yield* sql<{ kind: string; delta: string }>`SELECT kind, delta FROM credit_ledger WHERE user_id = ${userId} ORDER BY id`
    const generations = yield* sql<{ id: string }>`SELECT id FROM test_generations WHERE user_id = ${userId}`
    return { balance, ledger: rows.map((r) => `${r.kind}:${r.delta}`), generations: generations.map((g) => g.id) }
  }))

describe("credits reserved at enqueue and refunded on terminal failure", () => {
  let h: JobHarness
  beforeAll(async () => {
    h = await startJobs({}, [renderHandler])
    await h.run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE IF NOT EXISTS test_generations (id text PRIMARY KEY, user_id uuid NOT NULL)`))
  })
  afterAll(() => h?.close())

  it("a job that fails for good is refunded exactly its charge, once; a job that succeeds keeps its charge", async () => {
    const userId = await newUser(h, 50)
    await h.run(accept(userId, `ok-${userId}`, false))
    await h.run(accept(userId, `bad-${userId}`, true))
    expect((await state(h, userId)).balance).toBe(30)
    await eventually(() => h.run(Effect.option(JobQueues.pipe(Effect.flatMap((q) => q.deadLetters.get("render-test", `bad-${userId}`))))).then((o) => (o._tag === "Some" ? true : undefined)), 5_000, "dead letter")
    await eventually(async () => ((await state(h, userId)).balance === 40 ? true : undefined), 5_000, "refund")
    const after = await state(h, userId)
    expect(after.ledger).toEqual(["bonus:50", "usage:-10", "usage:-10", "refund:10"])
    // A second delivery of the failure changes nothing.
    await h.run(Effect.flatMap(Ledger, (l) => l.refund({ chargeKey: `gen:bad-${userId}`, reason: "Render failed" })))
    expect((await state(h, userId)).balance).toBe(40)
  })
})

describe("credits when the queue is down", () => {
  it("a failed enqueue rolls back the charge and the generation row", async () => {
    const redis = await PrivateRedis.start()
    const h = await startJobs({ REDIS_PORT: String(redis.port) }, [renderHandler])
    try {
      await h.run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE IF NOT EXISTS test_generations (id text PRIMARY KEY, user_id uuid NOT NULL)`))
      const userId = await newUser(h, 50)
      await redis.stop()
      const result = await h.run(Effect.either(accept(userId, `down-${userId}`, false)))
      expect(result._tag === "Left" && result.left._tag).toBe("JobQueueUnavailable")
      expect(await state(h, userId)).toEqual({ balance: 50, ledger: ["bonus:50"], generations: [] })
    } finally {
      await h.close()
      await redis.stop()
    }
  })
})
