import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import pg from "pg"
import { afterAll, describe, expect, inject, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { PgLive, runMigrations } from "../../src/layers/platform/DatabaseLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { productionEnv } from "../support/env.js"

const adminUrl = "postgres://postgres@127.0.0.1:5432/postgres"
const freshDb = `${new URL(inject("databaseUrl")).pathname.slice(1)}_migrations`
const freshUrl = `postgres://postgres@127.0.0.1:5432/${freshDb}`

const adminQuery = async (text: string, values: Array<unknown> = []) => {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    return await client.query(text, values)
  } finally {
    await client.end()
  }
}

// Slow enough that two replicas starting together overlap for its whole duration.
const slowLoader = Migrator.fromRecord({
  "0001_probe": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE migration_probe (id serial PRIMARY KEY, at timestamptz DEFAULT now())`
    yield* sql`SELECT pg_sleep(0.5)`
    yield* sql`INSERT INTO migration_probe DEFAULT VALUES`
  }),
  "0002_probe_more": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO migration_probe DEFAULT VALUES`
  })
})

const replica = (env: Record<string, string>) =>
  runMigrations(slowLoader).pipe(
    Effect.provide(PgLive.pipe(Layer.provide(Layer.effect(AppConfig, appConfigFrom({ NODE_ENV: "development", LOG_LEVEL: "silent", ...env })))))
  )

describe("database", () => {
  afterAll(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${freshDb}" WITH (FORCE)`)
  })

  it("creates a missing database in development, and replicas migrating at once apply each migration once", async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${freshDb}" WITH (FORCE)`)
    const env = { DATABASE_URL: freshUrl }
    const results = await Promise.all([1, 2, 3].map(() => Effect.runPromise(replica(env))))
    // Exactly one replica applied the migrations; the others found nothing left to do.
    expect(results.map((r) => r.length).sort()).toEqual([0, 0, 2])
    const client = new pg.Client({ connectionString: freshUrl })
    await client.connect()
    try {
      expect((await client.query("SELECT count(*)::int AS n FROM migration_probe")).rows[0].n).toBe(2)
      expect((await client.query("SELECT migration_id FROM schema_migrations ORDER BY 1")).rows.map((r) => r.migration_id)).toEqual([1, 2])
    } finally {
      await client.end()
    }
    // A later start applies nothing.
    expect(await Effect.runPromise(replica(env))).toEqual([])
  })

  it("production never creates a database", async () => {
    const missing = `${freshDb}_absent`
    const result = await Effect.runPromise(
      Effect.either(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`SELECT 1`
        }).pipe(
          Effect.provide(PgLive.pipe(Layer.provide(Layer.effect(AppConfig, appConfigFrom({
            ...productionEnv,
            LOG_LEVEL: "silent",
            DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${missing}`
          })))))
        )
      )
    )
    expect(result._tag).toBe("Left")
    const found = await adminQuery("SELECT 1 FROM pg_database WHERE datname = $1", [missing])
    expect(found.rowCount).toBe(0)
  })

  it("release ends the pool within its 5 s limit even while a query holds a client", async () => {
    const scope = Effect.runSync(Scope.make())
    const layer = PgLive.pipe(Layer.provide(Layer.effect(AppConfig, appConfigFrom({ DATABASE_URL: inject("databaseUrl"), LOG_LEVEL: "silent" }))))
    const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
    const sql = Effect.runSync(Effect.provide(SqlClient.SqlClient, context))
    await Effect.runPromise(sql`SELECT 1`)
    // A query that outlives the limit keeps its client checked out, so pool.end() cannot finish.
    const slow = Effect.runFork(sql`SELECT pg_sleep(20)`)
    await new Promise((r) => setTimeout(r, 300))
    const start = performance.now()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    const elapsed = performance.now() - start
    expect(elapsed).toBeGreaterThanOrEqual(4_800)
    expect(elapsed).toBeLessThan(7_000)
    await Effect.runPromise(Fiber.interrupt(slow))
    await adminQuery("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'")
  }, 30_000)
})
