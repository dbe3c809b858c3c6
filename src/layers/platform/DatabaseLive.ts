import { PgClient } from "@effect/sql-pg"
import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { Context, Data, Duration, Effect, Layer, Redacted, Runtime } from "effect"
import pg from "pg"
import { migrations } from "../../migrations/index.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { errorCodeOf, sqlStateOf } from "../../services/platform/errorCode.js"
import { LeanSql } from "../../services/platform/LeanSql.js"
import { awaitWithin, releaseStage } from "../../services/platform/Lifecycle.js"
import { makeLeanSqlPg } from "./LeanSqlPg.js"

export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly op: string
  readonly cause: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `database ${this.op} failed: ${cause}`
  }
}

/** Any constant works; it only has to be the same in every replica and unused elsewhere. */
const MIGRATION_LOCK_ID = 7_311_920_251n

const databaseName = (url: string): string => decodeURIComponent(new URL(url).pathname.replace(/^\//, ""))

/** Development convenience: creates the configured database when it does not exist yet. */
export const ensureDatabase = Effect.fn("Database.ensureDatabase")(function*(url: string) {
  const target = databaseName(url)
  const admin = new URL(url)
  admin.pathname = "/postgres"
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 })
  yield* Effect.acquireUseRelease(
    Effect.tryPromise({ try: () => client.connect(), catch: (cause) => new DatabaseError({ op: "connect", cause }) }),
    () =>
      Effect.gen(function*() {
        const found = yield* Effect.tryPromise({
          try: () => client.query("SELECT 1 FROM pg_database WHERE datname = $1", [target]),
          catch: (cause) => new DatabaseError({ op: "lookup database", cause })
        })
        if (found.rowCount === 0) {
          yield* Effect.tryPromise({
            try: () => client.query(`CREATE DATABASE ${pg.escapeIdentifier(target)}`),
            catch: (cause) => new DatabaseError({ op: "create database", cause })
          }).pipe(
            // Another process created it between our lookup and our CREATE: 42P04 (duplicate
            // database), or 23505 when both CREATEs race on the catalog's unique index.
            Effect.catchIf((e) => ["42P04", "23505"].includes(sqlStateOf(e) ?? ""), () => Effect.void),
            Effect.tap(() => Effect.logInfo("created missing database", { database: target }))
          )
        }
      }),
    () => Effect.promise(() => client.end().catch(() => undefined))
  ).pipe(Effect.scoped)
})

const runMigrator = Migrator.make({})

/**
 * Applies pending migrations. The whole run holds a transaction-scoped advisory lock, so replicas
 * starting together migrate one at a time and the later ones find nothing left to do.
 */
export const runMigrations = Effect.fn("Database.runMigrations")(function*(
  loader: Migrator.Loader = Migrator.fromRecord(migrations)
) {
  const sql = yield* SqlClient.SqlClient
  const applied = yield* sql.withTransaction(
    Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID.toString()}::bigint)`
      // Created here, under the lock, because the migrator's own create-if-missing probe fails
      // inside an enclosing transaction.
      yield* sql`CREATE TABLE IF NOT EXISTS schema_migrations (
        migration_id integer PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        name text NOT NULL
      )`
      return yield* runMigrator({ loader, table: "schema_migrations" })
    })
  )
  if (applied.length > 0) {
    yield* Effect.logInfo("migrations applied", { migrations: applied.map(([id, name]) => `${id}_${name}`) })
  }
  return applied
})

/** The pg pool shared by SqlClient and LeanSql (internal to this module). */
class PgPool extends Context.Tag("app/PgPool")<PgPool, pg.Pool>() {}

/**
 * Owns the Postgres pool: on release (after every layer that queries, SqlClient and LeanSql)
 * it ends the pool, waiting at most 5 s (less when the shutdown cap is nearer) for checked-out
 * clients; past that the pool is abandoned (its sockets die with the process).
 */
const PgPoolLive = Layer.scoped(
  PgPool,
  Effect.gen(function*() {
    const config = (yield* AppConfig).database
    const url = Redacted.value(config.url)
    if (config.createIfMissing) yield* ensureDatabase(url)
    const runtime = yield* Effect.runtime<never>()
    return yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new pg.Pool({
          connectionString: url,
          max: config.poolSize,
          connectionTimeoutMillis: Duration.toMillis(config.connectTimeout),
          idleTimeoutMillis: 30_000,
          statement_timeout: Duration.toMillis(config.statementTimeout),
          application_name: "lumiku-backend",
          keepAlive: true
        })
        // An idle client lost its server (restart, network): pg drops it from the pool by itself.
        pool.on("error", (error: Error) => {
          Runtime.runFork(runtime)(Effect.logWarning("postgres idle client error", { code: errorCodeOf(error) ?? error.name }))
        })
        return pool
      }),
      (pool) =>
        releaseStage(
          "postgres.close",
          awaitWithin(() => pool.end(), Duration.seconds(5)).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning("postgres pool did not end in time; its connections are abandoned", {
                error: error._tag === "TimeoutException" ? "timed out" : error.message
              }))
          )
        )
    )
  })
)

/** SqlClient (PgClient) and LeanSql over one pool, which is released after both. */
export const PgLive = Layer.merge(
  Layer.unwrapEffect(Effect.map(PgPool, (pool) => PgClient.layerFromPool({ acquire: Effect.succeed(pool) }))),
  Layer.effect(LeanSql, Effect.map(PgPool, makeLeanSqlPg))
).pipe(Layer.provide(PgPoolLive))

/** Postgres with the schema migrated: PgClient plus a migration run at startup. */
export const DatabaseLive = Layer.effectDiscard(runMigrations()).pipe(Layer.provideMerge(PgLive))
