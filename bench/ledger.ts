import { randomBytes, randomUUID } from "node:crypto"
import { availableParallelism } from "node:os"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Metric } from "effect"
import pg from "pg"
import { appConfigFrom } from "../src/layers/platform/AppConfigLive.js"
import { DatabaseLive } from "../src/layers/platform/DatabaseLive.js"
import { AppConfig } from "../src/services/platform/AppConfig.js"
import { Ledger, serializationRetries } from "../src/services/credits/Ledger.js"

/**
 * npm run bench:ledger: `Ledger.debit` of 1 credit, each with a fresh idempotency key, from
 * BENCH_CONCURRENCY (16) concurrent fibers over a pool of as many connections, for BENCH_DURATION
 * seconds (10) after BENCH_WARMUP seconds (2) of unmeasured load, in two scenarios:
 * - hot: every debit hits one user, so each waits for the previous one's row lock;
 * - spread: each debit picks one of BENCH_USERS (1000) users at random.
 * Latency is one debit call (its whole transaction), measured in the process. The retry rate is the
 * `ledger_serialization_retries` counter over the measured window, per debit.
 *
 * Runs against its own database, `lumiku_bench_<random>` on BENCH_ADMIN_URL's server (default the
 * local postgres), created here and dropped at the end.
 */

const env = process.env
const seconds = (name: string, fallback: number) => {
  const value = Number(env[name] ?? fallback)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number of seconds`)
  return value * 1000
}
const durationMs = seconds("BENCH_DURATION", 10)
const warmupMs = seconds("BENCH_WARMUP", 2)
const concurrency = Number(env["BENCH_CONCURRENCY"] ?? "16")
const spreadUsers = Number(env["BENCH_USERS"] ?? "1000")
const adminUrl = new URL(env["BENCH_ADMIN_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres")
const database = `lumiku_bench_${randomBytes(4).toString("hex")}`
const databaseUrl = new URL(adminUrl)
databaseUrl.pathname = `/${database}`

const admin = async <A>(use: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: adminUrl.toString() })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!

interface Result {
  readonly name: string
  readonly users: number
  readonly debits: number
  readonly refused: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly retries: number
}

const createUsers = (count: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ledger = yield* Ledger
    const rows = yield* sql<{ id: string }>`
      INSERT INTO users (email, password_hash)
      SELECT 'bench-' || gen_random_uuid() || '@bench.local', 'x' FROM generate_series(1, ${count})
      RETURNING id`
    const ids = rows.map((row) => row.id)
    // Funded through the ledger like any user, so SUM(delta) = balance holds here too.
    yield* Effect.forEach(
      ids,
      (userId) => ledger.credit({ userId, amount: 1_000_000_000, key: `bench-fund:${userId}`, kind: "purchase", reason: "bench" }),
      { concurrency, discard: true }
    )
    return ids
  })

const scenario = (name: string, users: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const load = (until: number, latencies: Array<number> | undefined) => {
      let debits = 0
      let refused = 0
      const worker = Effect.whileLoop({
        while: () => performance.now() < until,
        body: () =>
          Effect.suspend(() => {
            const userId = users[Math.floor(Math.random() * users.length)]!
            const started = performance.now()
            return ledger.debit({ userId, amount: 1, key: `bench:${randomUUID()}`, reason: "bench" }).pipe(
              Effect.match({
                onFailure: () => {
                  refused += 1
                },
                onSuccess: () => {
                  debits += 1
                  latencies?.push(performance.now() - started)
                }
              })
            )
          }),
        step: () => undefined
      })
      return Effect.all(Array.from({ length: concurrency }, () => worker), { concurrency: "unbounded", discard: true }).pipe(
        Effect.map(() => ({ debits, refused }))
      )
    }
    yield* load(performance.now() + warmupMs, undefined)
    const retriesBefore = (yield* Metric.value(serializationRetries)).count
    const latencies: Array<number> = []
    const started = performance.now()
    const { debits, refused } = yield* load(started + durationMs, latencies)
    const elapsed = (performance.now() - started) / 1000
    const retries = (yield* Metric.value(serializationRetries)).count - retriesBefore
    latencies.sort((a, b) => a - b)
    const result: Result = {
      name,
      users: users.length,
      debits,
      refused,
      perSecond: debits / elapsed,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      retries
    }
    return result
  })

/** After the load: every user's balance is still the sum of its ledger and the newest balance_after. */
const consistent = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ bad: number }>`
    SELECT count(*)::int AS bad FROM users u
    WHERE u.balance <> (SELECT COALESCE(SUM(delta), 0) FROM credit_ledger WHERE user_id = u.id)
       OR u.balance <> (SELECT balance_after FROM credit_ledger WHERE user_id = u.id ORDER BY id DESC LIMIT 1)`
  return rows[0]!.bad === 0
})

const main = async () => {
  await admin((client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`))
  const runtime = ManagedRuntime.make(
    Ledger.Default.pipe(
      Layer.provideMerge(DatabaseLive),
      Layer.provide(Layer.effect(AppConfig, appConfigFrom({
        DATABASE_URL: databaseUrl.toString(),
        DB_POOL_SIZE: String(concurrency),
        LOG_LEVEL: "warn"
      }))),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
  )
  try {
    const { results, ok, server } = await runtime.runPromise(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [info] = yield* sql<{ version: string; sync: string }>`
        SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync`
      const hot = yield* createUsers(1)
      const spread = yield* createUsers(spreadUsers)
      const results = [yield* scenario("hot: one user", hot), yield* scenario(`spread: ${spreadUsers} users`, spread)]
      return { results, ok: yield* consistent, server: info! }
    }))
    const fmt = (n: number, digits = 2) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    console.log(
      `Ledger.debit, concurrency ${concurrency}, pool ${concurrency}, ${durationMs / 1000} s per scenario after ${warmupMs / 1000} s warm-up; ` +
        `Node ${process.version}, PostgreSQL ${server.version} (synchronous_commit=${server.sync}), ${availableParallelism()} cores, ` +
        `${new Date().toISOString().slice(0, 10)}\n`
    )
    console.log("| scenario | debits | debits/s | p50 ms | p99 ms | serialization retries | retry rate |")
    console.log("|---|---:|---:|---:|---:|---:|---:|")
    for (const r of results) {
      const rate = r.debits === 0 ? 0 : (r.retries / r.debits) * 100
      console.log(
        `| ${r.name} | ${r.debits.toLocaleString("en-US")} | ${fmt(r.perSecond, 0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.retries} | ${fmt(rate, 3)}% |`
      )
      if (r.refused > 0) console.log(`\n${r.name}: ${r.refused} debits failed`)
    }
    console.log(`\nbalances = SUM(delta) = newest balance_after for every user afterwards: ${ok ? "yes" : "NO"}`)
    if (!ok) process.exitCode = 1
  } finally {
    await runtime.dispose()
    await admin(async (client) => {
      // pool.end() resolves before the backends have exited; FORCE would signal them (57P01) mid-exit.
      for (let i = 0; i < 50; i++) {
        const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1", [database])
        if (rows[0]?.n === 0) break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`)
    })
  }
}

await main()
