import { randomBytes } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Cause, Effect, Exit, Fiber, Layer } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { PgLive } from "../../src/layers/platform/DatabaseLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { LeanSql } from "../../src/services/platform/LeanSql.js"

const table = `lean_sql_${randomBytes(4).toString("hex")}`

const admin = async (text: string) => {
  const client = new pg.Client({ connectionString: inject("databaseUrl") })
  await client.connect()
  try {
    return await client.query(text)
  } finally {
    await client.end()
  }
}

const TestLive = PgLive.pipe(Layer.provide(Layer.effect(AppConfig, appConfigFrom({
  DATABASE_URL: inject("databaseUrl"),
  LOG_LEVEL: "silent",
  DB_POOL_SIZE: "2"
}))))

const run = <A, E>(effect: Effect.Effect<A, E, LeanSql | SqlClient.SqlClient>) => Effect.runPromiseExit(Effect.provide(effect, TestLive))

const services = Effect.all({ lean: LeanSql, sql: SqlClient.SqlClient })
const values = (tag: string) =>
  Effect.flatMap(services, ({ lean, sql }) => lean.run(sql<{ v: string }>`SELECT v FROM ${sql(table)} WHERE tag = ${tag} ORDER BY v`))
    .pipe(Effect.map((rows) => rows.map((r) => r.v)))
const insert = (tag: string, v: string) =>
  Effect.flatMap(services, ({ lean, sql }) => lean.run(sql`INSERT INTO ${sql(table)} (tag, v) VALUES (${tag}, ${v}) RETURNING v`))
const backendPid = Effect.flatMap(services, ({ lean, sql }) => lean.run(sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`))
  .pipe(Effect.map((rows) => rows[0]!.pid))
const alive = async (pid: number) => (await admin(`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid}`)).rowCount === 1
const newTag = () => randomBytes(6).toString("hex")

describe("LeanSql: the hot paths' statements, sent by one Effect.async each", () => {
  beforeAll(async () => {
    // a deferred unique key: a duplicate fails at COMMIT, not at the INSERT
    await admin(`CREATE TABLE ${table} (tag text NOT NULL, v text NOT NULL, UNIQUE (tag, v) DEFERRABLE INITIALLY DEFERRED)`)
  })
  afterAll(async () => {
    await admin(`DROP TABLE IF EXISTS ${table}`)
  })

  it("runs a statement outside any transaction and answers its rows; inTransaction says where it is", async () => {
    const tag = newTag()
    const exit = await run(Effect.gen(function*() {
      const lean = yield* LeanSql
      const rows = yield* insert(tag, "a")
      const inside = yield* lean.transaction(lean.inTransaction)
      return { rows, outside: yield* lean.inTransaction, inside, read: yield* values(tag) }
    }))
    expect(exit).toEqual(Exit.succeed({ rows: [{ v: "a" }], outside: false, inside: true, read: ["a"] }))
  })

  it("commits a transaction on one connection, and rolls it back on a failure or a defect", async () => {
    const tag = newTag()
    const exit = await run(Effect.gen(function*() {
      const lean = yield* LeanSql
      const pids = yield* lean.transaction(Effect.gen(function*() {
        yield* insert(tag, "kept")
        return [yield* backendPid, yield* backendPid]
      }))
      const failed = yield* Effect.exit(lean.transaction(Effect.zipRight(insert(tag, "failed"), Effect.fail("no"))))
      const died = yield* Effect.exit(lean.transaction(Effect.zipRight(insert(tag, "died"), Effect.dieMessage("boom"))))
      return { pids, failed, died, read: yield* values(tag) }
    }))
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    expect(exit.value.pids[0]).toBe(exit.value.pids[1])
    expect(exit.value.failed).toEqual(Exit.fail("no"))
    expect(Exit.isFailure(exit.value.died) && Cause.isDie(exit.value.died.cause)).toBe(true)
    expect(exit.value.read).toEqual(["kept"])
  })

  it("joins the caller's transaction, of its own kind or @effect/sql's, with no savepoint", async () => {
    const tag = newTag()
    const exit = await run(Effect.gen(function*() {
      const { lean, sql } = yield* services
      const nested = yield* Effect.exit(lean.transaction(Effect.gen(function*() {
        yield* lean.transaction(insert(tag, "nested"))
        return yield* Effect.fail("outer fails")
      })))
      const [pidSql, pidLean] = yield* sql.withTransaction(Effect.gen(function*() {
        const viaSql = (yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)[0]!.pid
        return [viaSql, yield* lean.transaction(backendPid)] as const
      }))
      const joined = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
        yield* lean.transaction(insert(tag, "joined"))
        return yield* Effect.fail("outer fails")
      })))
      return { nested, same: pidSql === pidLean, joined, read: yield* values(tag) }
    }))
    expect(exit).toEqual(Exit.succeed({ nested: Exit.fail("outer fails"), same: true, joined: Exit.fail("outer fails"), read: [] }))
  })

  it("a statement yielded the usual way inside a lean transaction dies, naming it, and the transaction rolls back", async () => {
    const tag = newTag()
    const exit = await run(Effect.gen(function*() {
      const { lean, sql } = yield* services
      const stray = yield* Effect.exit(lean.transaction(Effect.gen(function*() {
        yield* insert(tag, "before")
        yield* sql`INSERT INTO ${sql(table)} (tag, v) VALUES (${tag}, 'stray')`
      })))
      return { stray, read: yield* values(tag) }
    }))
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    expect(Exit.isFailure(exit.value.stray) && Cause.pretty(exit.value.stray.cause)).toContain("a statement ran outside its lean transaction")
    expect(exit.value.read).toEqual([])
  })

  it("is not interrupted halfway: an interruption waits for the transaction, which commits", async () => {
    const tag = newTag()
    const exit = await run(Effect.gen(function*() {
      const { lean, sql } = yield* services
      const fiber = yield* Effect.fork(lean.transaction(Effect.gen(function*() {
        yield* insert(tag, "first")
        yield* lean.run(sql`SELECT pg_sleep(0.3)`)
        yield* insert(tag, "second")
      })))
      yield* Effect.sleep("50 millis")
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      return { waited: Date.now() - started, read: yield* values(tag) }
    }))
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    expect(exit.value.waited).toBeGreaterThan(150)
    expect(exit.value.read).toEqual(["first", "second"])
  })

  it("a COMMIT that fails answers SqlError, writes nothing, and the pool drops that connection", async () => {
    const tag = newTag()
    let pid = 0
    const exit = await run(Effect.gen(function*() {
      const lean = yield* LeanSql
      const failed = yield* Effect.exit(lean.transaction(Effect.gen(function*() {
        pid = yield* backendPid
        yield* insert(tag, "twice")
        yield* insert(tag, "twice") // deferred: accepted here, refused by COMMIT
      })))
      // asked while the pool is still open (closing it would end every connection anyway)
      let gone = false
      for (let i = 0; i < 50 && !gone; i++) {
        gone = !(yield* Effect.promise(() => alive(pid)))
        if (!gone) yield* Effect.sleep("20 millis")
      }
      return { failed, gone, read: yield* values(tag) }
    }))
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    const failure = exit.value.failed
    expect(Exit.isFailure(failure) && Cause.failureOption(failure.cause).pipe((o) => o._tag === "Some" && o.value._tag)).toBe("SqlError")
    expect(exit.value.read).toEqual([])
    expect(exit.value.gone).toBe(true)
  })

  it("a transaction that rolled back leaves its connection usable: the next one gets it back", async () => {
    const exit = await run(Effect.gen(function*() {
      const lean = yield* LeanSql
      let first = 0
      yield* Effect.exit(lean.transaction(Effect.flatMap(backendPid, (pid) => {
        first = pid
        return Effect.fail("rolled back")
      })))
      const next = yield* lean.transaction(backendPid)
      return { first, next, alive: yield* Effect.promise(() => alive(first)) }
    }))
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    expect(exit.value.alive).toBe(true)
    expect(exit.value.next).toBe(exit.value.first) // pg-pool hands out the client released last
  })
})
