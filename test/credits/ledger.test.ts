import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Logger, LogLevel, Metric, Schedule } from "effect"
import pg from "pg"
import { inject } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { DatabaseLive } from "../../src/layers/platform/DatabaseLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { Ledger, type LedgerEntry, serializationRetries } from "../../src/services/credits/Ledger.js"

/** The randomized mix runs this many seconds (the issue asks for 30). */
const MIX_SECONDS = Number(process.env["LEDGER_MIX_SECONDS"] ?? "30")

const LedgerTest = Ledger.Default.pipe(
  Layer.provideMerge(DatabaseLive),
  Layer.provide(Layer.effect(AppConfig, appConfigFrom({
    DATABASE_URL: inject("databaseUrl"),
    LOG_LEVEL: "silent",
    DB_POOL_SIZE: "20"
  }))),
  Layer.provide(Logger.minimumLogLevel(LogLevel.None))
)

const newUser = (tags: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const email = `ledger-${randomUUID()}@test.local`
    const rows = yield* sql<{ id: string }>`
      INSERT INTO users (email, password_hash, tags) VALUES (${email}, 'x', ${`{${tags.join(",")}}`}::text[]) RETURNING id`
    return rows[0]!.id
  })

/** A user whose whole balance came through the ledger, so SUM(delta) = balance holds from the start. */
const fundedUser = (balance: number, tags: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const userId = yield* newUser(tags)
    yield* ledger.credit({ userId, amount: balance, key: `fund:${userId}`, kind: "purchase", reason: "test funding" })
    return userId
  })

const state = (userId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ balance: string; sum: string; rows: string }>`
      SELECT u.balance, COALESCE(SUM(l.delta), 0) AS sum, count(l.id) AS rows
      FROM users u LEFT JOIN credit_ledger l ON l.user_id = u.id
      WHERE u.id = ${userId} GROUP BY u.id`
    return { balance: Number(row!.balance), sum: Number(row!.sum), rows: Number(row!.rows) }
  })

const rowsWithKey = (key: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ n: number }>`SELECT count(*)::int AS n FROM credit_ledger WHERE idempotency_key = ${key}`.pipe(
      Effect.map((rows) => rows[0]!.n)
    ))

const tagOf = <A, E extends { readonly _tag: string }>(result: Either.Either<A, E>) =>
  Either.isLeft(result) ? result.left._tag : "ok"

const retriesSoFar = Effect.map(Metric.value(serializationRetries), (state) => state.count)

/** A second session, outside the pool, to hold locks against the ledger. */
const withClient = <A, E, R>(use: (client: pg.Client) => Effect.Effect<A, E, R>, setup?: string) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: inject("databaseUrl") })
      await client.connect()
      if (setup !== undefined) await client.query(setup)
      return client
    }),
    use,
    (client) => Effect.promise(() => client.end())
  )

/** Waits until a ledger statement is blocked inserting its row (on a key another session holds). */
const blockedOnInsert = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO credit_ledger%'`.pipe(
    Effect.flatMap((rows) => rows[0]!.n > 0 ? Effect.void : Effect.fail("not yet")),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(250)))),
    Effect.orDieWith(() => new Error("no ledger statement blocked on its key"))
  ))

// Live clock: the retry schedule and the mix run in real time.
layer(LedgerTest, { timeout: 60_000, excludeTestServices: true })("credit ledger", (it) => {
  it.effect("balance 10, 100 concurrent debits of 1: exactly 10 succeed, 90 are InsufficientCredits", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const userId = yield* fundedUser(10)
      const results = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => Effect.either(ledger.debit({ userId, amount: 1, key: `race:${userId}:${i}`, reason: "race" })),
        { concurrency: "unbounded" }
      )
      expect(results.filter(Either.isRight)).toHaveLength(10)
      const failures = results.filter(Either.isLeft).map((r) => r.left)
      expect(failures).toHaveLength(90)
      for (const failure of failures) {
        expect(failure).toMatchObject({ _tag: "InsufficientCredits", required: 1, current: 0 })
      }
      expect(yield* state(userId)).toEqual({ balance: 0, sum: 0, rows: 11 })
      expect(yield* ledger.balance(userId)).toBe(0)
      // Every successful debit saw a distinct balance: the conditional UPDATE serialized them.
      const after = results.filter(Either.isRight).map((r) => r.right.balanceAfter).sort((a, b) => a - b)
      expect(after).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }))

  it.effect("the same idempotency key 5 times concurrently charges once and returns the first result", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const userId = yield* fundedUser(10)
      const key = `dup:${userId}`
      const results = yield* Effect.all(
        Array.from({ length: 5 }, () => ledger.debit({ userId, amount: 3, key, reason: "dup", reference: "gen-1" })),
        { concurrency: "unbounded" }
      )
      expect(new Set(results.map((r) => r.id)).size).toBe(1)
      expect(results[0]).toMatchObject({ delta: -3, balanceAfter: 7, kind: "usage", reference: "gen-1" })
      expect(yield* state(userId)).toEqual({ balance: 7, sum: 7, rows: 2 })
      // Later, with the balance too low to pay again, the key still answers with the first result.
      yield* ledger.debit({ userId, amount: 7, key: `drain:${userId}`, reason: "drain" })
      expect(yield* ledger.debit({ userId, amount: 3, key, reason: "dup", reference: "gen-1" })).toEqual(results[0])
      expect(yield* rowsWithKey(key)).toBe(1)
    }))

  it.effect("a key reused for a different operation is refused", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const userId = yield* fundedUser(10)
      const other = yield* fundedUser(10)
      const key = `reuse:${userId}`
      yield* ledger.debit({ userId, amount: 2, key, reason: "first" })
      expect(tagOf(yield* Effect.either(ledger.debit({ userId, amount: 5, key, reason: "other amount" })))).toBe("IdempotencyKeyReused")
      expect(tagOf(yield* Effect.either(ledger.debit({ userId: other, amount: 2, key, reason: "other user" })))).toBe("IdempotencyKeyReused")
      expect(tagOf(yield* Effect.either(ledger.credit({ userId, amount: 2, key, kind: "bonus", reason: "credit" })))).toBe("IdempotencyKeyReused")
      expect(yield* state(userId)).toEqual({ balance: 8, sum: 8, rows: 2 })
      expect(yield* state(other)).toEqual({ balance: 10, sum: 10, rows: 1 })
    }))

  it.effect("a replay must match amount, kind and reference, including an enterprise user's 0-credit charge", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const userId = yield* fundedUser(5, ["enterprise_unlimited"])
      const key = `ent-replay:${userId}`
      const first = yield* ledger.debit({ userId, amount: 40, key, reason: "pose", reference: "gen-9" })
      expect(first).toMatchObject({ delta: 0, requestedAmount: 40, reference: "gen-9" })
      // the same operation replays, whatever its free-text reason
      expect(yield* ledger.debit({ userId, amount: 40, key, reason: "redelivery", reference: "gen-9" })).toEqual(first)
      const refused = (result: Either.Either<LedgerEntry, { readonly _tag: string; readonly message: string }>) =>
        Either.isLeft(result) ? result.left : undefined
      const cases = [
        [ledger.debit({ userId, amount: 999999, key, reason: "pose", reference: "gen-9" }), ["amount"]],
        [ledger.debit({ userId, amount: 40, key, reason: "pose", reference: "gen-10" }), ["reference"]],
        [ledger.debit({ userId, amount: 40, key, reason: "pose" }), ["reference"]],
        [ledger.debit({ userId, amount: 40, key, reason: "pose", reference: "gen-9", kind: "adjustment" }), ["kind"]]
      ] as const
      for (const [operation, mismatch] of cases) {
        const error = refused(yield* Effect.either(operation))
        expect(error).toMatchObject({ _tag: "IdempotencyKeyReused", key, mismatch })
        expect(error?.message).toContain(`another ${mismatch.join(", ")}`)
      }
      // and for a paying user's charge and a credit too
      const payer = yield* fundedUser(10)
      yield* ledger.debit({ userId: payer, amount: 2, key: `pay:${payer}`, reason: "mixer", reference: "gen-1" })
      expect(refused(yield* Effect.either(ledger.debit({ userId: payer, amount: 2, key: `pay:${payer}`, reason: "mixer", reference: "gen-2" }))))
        .toMatchObject({ _tag: "IdempotencyKeyReused", mismatch: ["reference"] })
      yield* ledger.credit({ userId: payer, amount: 7, key: `bonus:${payer}`, kind: "bonus", reason: "promo", reference: "promo-1" })
      expect(refused(yield* Effect.either(ledger.credit({ userId: payer, amount: 8, key: `bonus:${payer}`, kind: "bonus", reason: "promo", reference: "promo-1" }))))
        .toMatchObject({ _tag: "IdempotencyKeyReused", mismatch: ["amount"] })
      expect(yield* state(userId)).toEqual({ balance: 5, sum: 5, rows: 2 })
      expect(yield* state(payer)).toEqual({ balance: 15, sum: 15, rows: 3 })
    }))

  it.effect("a 0-delta charge written before requested_amount existed still replays", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const sql = yield* SqlClient.SqlClient
      const userId = yield* fundedUser(5, ["enterprise_unlimited"])
      const key = `legacy:${userId}`
      yield* ledger.debit({ userId, amount: 30, key, reason: "pose" })
      yield* sql`UPDATE credit_ledger SET requested_amount = NULL WHERE idempotency_key = ${key}`
      expect(yield* ledger.debit({ userId, amount: 30, key, reason: "pose" })).toMatchObject({ delta: 0, requestedAmount: null })
    }))

  it.effect("a refund delivered twice, in turn and concurrently, refunds once and restores the balance exactly", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const userId = yield* fundedUser(10)
      const charge = yield* ledger.debit({ userId, amount: 4, key: `job:${userId}`, reason: "avatar", reference: "gen-2" })
      const first = yield* ledger.refund({ chargeKey: charge.idempotencyKey, reason: "job failed" })
      expect(first).toMatchObject({ kind: "refund", delta: 4, balanceAfter: 10, refundOf: charge.idempotencyKey, reference: "gen-2" })
      // A redelivery, even under another key, returns the first refund.
      expect(yield* ledger.refund({ chargeKey: charge.idempotencyKey, reason: "job failed" })).toEqual(first)
      expect(yield* ledger.refund({ chargeKey: charge.idempotencyKey, key: `other:${userId}`, reason: "again" })).toEqual(first)
      expect(yield* state(userId)).toEqual({ balance: 10, sum: 10, rows: 3 })

      const second = yield* ledger.debit({ userId, amount: 6, key: `job2:${userId}`, reason: "mixer" })
      const refunds = yield* Effect.all([
        ledger.refund({ chargeKey: second.idempotencyKey, reason: "failed" }),
        ledger.refund({ chargeKey: second.idempotencyKey, reason: "failed" }),
        ledger.refund({ chargeKey: second.idempotencyKey, key: `r:${userId}:a`, reason: "failed" }),
        ledger.refund({ chargeKey: second.idempotencyKey, key: `r:${userId}:b`, reason: "failed" })
      ], { concurrency: "unbounded" })
      expect(new Set(refunds.map((r) => r.id)).size).toBe(1)
      expect(refunds[0]).toMatchObject({ delta: 6, balanceAfter: 10 })
      expect(yield* state(userId)).toEqual({ balance: 10, sum: 10, rows: 5 })
    }))

  it.effect("a partial refund returns the share asked for, never more than the charge, and still only once", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const userId = yield* fundedUser(20)
      const charge = yield* ledger.debit({ userId, amount: 10, key: `part:${userId}`, reason: "4 images" })
      const partials = yield* Effect.all([
        ledger.refund({ chargeKey: charge.idempotencyKey, amount: 8, reason: "3 of 4 not delivered" }),
        ledger.refund({ chargeKey: charge.idempotencyKey, amount: 5, reason: "a repeat naming another share" })
      ], { concurrency: "unbounded" })
      expect(new Set(partials.map((r) => r.id)).size).toBe(1)
      expect([8, 5]).toContain(partials[0]!.delta)
      expect(yield* state(userId)).toEqual({ balance: 10 + partials[0]!.delta, sum: 10 + partials[0]!.delta, rows: 3 })
      // Asking for more than the charge took refunds the charge, no more.
      const other = yield* ledger.debit({ userId, amount: 3, key: `part2:${userId}`, reason: "1 clip" })
      expect(yield* ledger.refund({ chargeKey: other.idempotencyKey, amount: 1_000, reason: "too much" })).toMatchObject({ delta: 3 })
      const third = yield* ledger.debit({ userId, amount: 2, key: `part3:${userId}`, reason: "1 clip" })
      for (const amount of [-1, 1.5, Number.NaN]) {
        expect(tagOf(yield* Effect.either(ledger.refund({ chargeKey: third.idempotencyKey, amount, reason: "bad" })))).toBe("InvalidAmount")
      }
    }))

  it.effect("enterprise_unlimited users are charged 0, and refunding that charge mints nothing", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const userId = yield* fundedUser(5, ["enterprise_unlimited"])
      const charge = yield* ledger.debit({ userId, amount: 100, key: `ent:${userId}`, reason: "pose" })
      expect(charge).toMatchObject({ delta: 0, balanceAfter: 5, kind: "usage" })
      const refund = yield* ledger.refund({ chargeKey: charge.idempotencyKey, reason: "job failed" })
      expect(refund).toMatchObject({ delta: 0, balanceAfter: 5, refundOf: charge.idempotencyKey })
      expect(yield* ledger.refund({ chargeKey: charge.idempotencyKey, reason: "job failed" })).toEqual(refund)
      expect(yield* state(userId)).toEqual({ balance: 5, sum: 5, rows: 3 })
      // An operator's adjustment is not usage, so it applies to them too.
      expect(yield* ledger.debit({ userId, amount: 2, key: `adj:${userId}`, kind: "adjustment", reason: "correction" }))
        .toMatchObject({ delta: -2, balanceAfter: 3 })
    }))

  it.effect("refunds of unknown charges, credits and refunds are typed errors; bad amounts are refused", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const userId = yield* fundedUser(10)
      const unknown = yield* Effect.either(ledger.refund({ chargeKey: `never:${userId}`, reason: "x" }))
      expect(Either.isLeft(unknown) && unknown.left).toMatchObject({ _tag: "ChargeNotFound", chargeKey: `never:${userId}` })
      expect(tagOf(yield* Effect.either(ledger.refund({ chargeKey: `fund:${userId}`, reason: "x" })))).toBe("NotRefundable")
      const charge = yield* ledger.debit({ userId, amount: 1, key: `c:${userId}`, reason: "x" })
      const refund = yield* ledger.refund({ chargeKey: charge.idempotencyKey, reason: "x" })
      expect(tagOf(yield* Effect.either(ledger.refund({ chargeKey: refund.idempotencyKey, reason: "x" })))).toBe("NotRefundable")
      const adjustment = yield* ledger.debit({ userId, amount: 1, key: `a:${userId}`, kind: "adjustment", reason: "x" })
      expect(tagOf(yield* Effect.either(ledger.refund({ chargeKey: adjustment.idempotencyKey, reason: "x" })))).toBe("NotRefundable")
      for (const amount of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
        expect(tagOf(yield* Effect.either(ledger.debit({ userId, amount, key: `bad:${userId}:${amount}`, reason: "x" })))).toBe("InvalidAmount")
        expect(tagOf(yield* Effect.either(ledger.credit({ userId, amount, key: `bad:${userId}:${amount}`, kind: "bonus", reason: "x" })))).toBe("InvalidAmount")
      }
      expect(tagOf(yield* Effect.either(ledger.credit({ userId, amount: Number.MAX_SAFE_INTEGER, key: `big:${userId}`, kind: "adjustment", reason: "x" }))))
        .toBe("InvalidAmount")
      expect(tagOf(yield* Effect.either(ledger.debit({ userId: randomUUID(), amount: 1, key: `nouser:${userId}`, reason: "x" })))).toBe("UserNotFound")
      expect(yield* state(userId)).toEqual({ balance: 9, sum: 9, rows: 4 })
    }))

  it.effect("a charge inside a caller's transaction that then fails is rolled back with it", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE IF NOT EXISTS ledger_test_generations (id text PRIMARY KEY, user_id uuid NOT NULL)`
      const userId = yield* fundedUser(10)

      const failed = yield* Effect.either(sql.withTransaction(Effect.gen(function*() {
        yield* ledger.debit({ userId, amount: 4, key: `tx:${userId}:1`, reason: "mixer" })
        return yield* Effect.fail("the generation row could not be created")
      })))
      expect(Either.isLeft(failed)).toBe(true)
      expect(yield* rowsWithKey(`tx:${userId}:1`)).toBe(0)
      expect(yield* state(userId)).toEqual({ balance: 10, sum: 10, rows: 1 })

      // withCharge: the generation row and the charge commit or roll back together.
      const duplicateRow = yield* Effect.either(ledger.withCharge(
        { userId, amount: 4, key: `tx:${userId}:2`, reason: "mixer" },
        () => sql`INSERT INTO ledger_test_generations (id, user_id) VALUES ('same', ${userId}), ('same', ${userId})`
      ))
      expect(Either.isLeft(duplicateRow)).toBe(true)
      expect(yield* rowsWithKey(`tx:${userId}:2`)).toBe(0)
      const generationId = `gen-${userId}`
      const made = yield* ledger.withCharge(
        { userId, amount: 4, key: generationId, reason: "mixer", reference: generationId },
        (charge) => sql`INSERT INTO ledger_test_generations (id, user_id) VALUES (${generationId}, ${userId})`.pipe(Effect.as(charge))
      )
      expect(made).toMatchObject({ delta: -4, balanceAfter: 6 })
      const generations = yield* sql<{ id: string }>`SELECT id FROM ledger_test_generations WHERE id = ${generationId}`
      expect(generations).toHaveLength(1)

      // A refused debit is a savepoint rollback: the caller's transaction stays usable and commits.
      const outcome = yield* sql.withTransaction(Effect.gen(function*() {
        const refused = yield* Effect.either(ledger.debit({ userId, amount: 100, key: `tx:${userId}:3`, reason: "too much" }))
        yield* ledger.credit({ userId, amount: 1, key: `tx:${userId}:4`, kind: "bonus", reason: "still fine" })
        return tagOf(refused)
      }))
      expect(outcome).toBe("InsufficientCredits")
      expect(yield* state(userId)).toEqual({ balance: 7, sum: 7, rows: 3 })
    }))

  it.effect("chargeWith: the charge and the caller's write are one statement; a refusal writes neither and says why", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE IF NOT EXISTS ledger_test_charged (id text PRIMARY KEY, user_id uuid NOT NULL, charged bigint NOT NULL)`
      const userId = yield* fundedUser(10)
      const charge = (id: string, amount: number, user = userId) =>
        ledger.chargeWith({ userId: user, amount, key: `with:${id}`, reason: "with", reference: id }, (ctes) =>
          sql<{ id: string; charged: string; balance: string }>`
            WITH ${ctes}, made AS (
              INSERT INTO ledger_test_charged (id, user_id, charged) SELECT ${id}, ${user}, -charge.delta FROM charge RETURNING *
            )
            SELECT made.id, made.charged, charge.balance_after AS balance FROM made CROSS JOIN charge`)

      const id = randomUUID()
      expect(yield* charge(id, 4)).toEqual([{ id, charged: "4", balance: "6" }])
      expect(yield* state(userId)).toEqual({ balance: 6, sum: 6, rows: 2 })

      // Too few credits: no row of either table, and the error names what was asked and what is there.
      const refusedId = randomUUID()
      const refused = yield* Effect.either(charge(refusedId, 7))
      expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "InsufficientCredits", required: 7, current: 6 })
      expect(yield* sql`SELECT 1 FROM ledger_test_charged WHERE id = ${refusedId}`).toHaveLength(0)
      expect(yield* rowsWithKey(`with:${refusedId}`)).toBe(0)
      expect(yield* state(userId)).toEqual({ balance: 6, sum: 6, rows: 2 })

      // No such user; a bad amount is refused before any SQL.
      expect(tagOf(yield* Effect.either(charge(randomUUID(), 1, randomUUID())))).toBe("UserNotFound")
      expect(tagOf(yield* Effect.either(charge(randomUUID(), 0)))).toBe("InvalidAmount")

      // Six at once with credits for three: the conditional UPDATE lets exactly three through.
      const results = yield* Effect.forEach(Array.from({ length: 6 }, () => randomUUID()), (each) => Effect.either(charge(each, 2)), {
        concurrency: "unbounded"
      })
      expect(results.filter(Either.isRight)).toHaveLength(3)
      expect(yield* state(userId)).toEqual({ balance: 0, sum: 0, rows: 5 })

      // The enterprise exemption is decided in the same statement: charged 0, the 0-delta row still written.
      const enterprise = yield* fundedUser(1, ["enterprise_unlimited"])
      const free = randomUUID()
      expect(yield* charge(free, 50, enterprise)).toEqual([{ id: free, charged: "0", balance: "1" }])
      const [row] = yield* sql<{ delta: string; requested_amount: string }>`
        SELECT delta, requested_amount FROM credit_ledger WHERE idempotency_key = ${`with:${free}`}`
      expect(row).toEqual({ delta: "0", requested_amount: "50" })
    }))

  it.effect("atomic: inside a caller's transaction no savepoint is made, so a failure fails the caller's transaction", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const sql = yield* SqlClient.SqlClient
      const userId = yield* fundedUser(10)
      // Alone, it is a transaction: the debit and the failure after it roll back together.
      const alone = yield* Effect.either(ledger.atomic(Effect.gen(function*() {
        yield* ledger.debit({ userId, amount: 3, key: `atomic:${userId}:1`, reason: "atomic" })
        return yield* sql`SELECT 1/0`
      })))
      expect(tagOf(alone)).toBe("SqlError")
      expect(yield* state(userId)).toEqual({ balance: 10, sum: 10, rows: 1 })
      // Nested: no savepoint, so after a failure inside it the caller's transaction is aborted (25P02)...
      const afterAtomic = yield* Effect.either(sql.withTransaction(Effect.gen(function*() {
        yield* Effect.either(ledger.atomic(sql`SELECT 1/0`))
        return yield* sql`SELECT 1`
      })))
      expect(Either.isLeft(afterAtomic) && (afterAtomic.left.cause as { code?: string }).code).toBe("25P02")
      // ...where `transaction` makes one, and the caller goes on; a success commits with the caller.
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* Effect.either(ledger.transaction(sql`SELECT 1/0`))
        yield* sql`SELECT 1`
        yield* ledger.atomic(ledger.debit({ userId, amount: 3, key: `atomic:${userId}:2`, reason: "atomic" }))
      }))
      expect(yield* state(userId)).toEqual({ balance: 7, sum: 7, rows: 2 })
    }))

  it.effect("a debit that loses its key's race inside a caller's transaction returns the winner's row; the transaction goes on", () =>
    withClient((client) =>
      Effect.gen(function*() {
        const ledger = yield* Ledger
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS ledger_test_generations (id text PRIMARY KEY, user_id uuid NOT NULL)`
        const userId = yield* fundedUser(10)
        const key = `race-in-tx:${userId}`
        // The winner: another transaction has written the key's row (only the row, to tell them apart).
        yield* Effect.promise(() => client.query("BEGIN"))
        const winner = yield* Effect.promise(() =>
          client.query<{ id: string }>(
            `INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, idempotency_key)
             VALUES ($1, -3, 7, 'usage', 'winner', $2) RETURNING id`,
            [userId, key]
          ))
        const caller = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          const charge = yield* ledger.debit({ userId, amount: 3, key, reason: "loser" })
          yield* sql`INSERT INTO ledger_test_generations (id, user_id) VALUES (${key}, ${userId})`
          return charge
        })))
        yield* blockedOnInsert
        yield* Effect.promise(() => client.query("COMMIT"))
        const charge = yield* Fiber.join(caller)
        expect(charge).toMatchObject({ id: Number(winner.rows[0]!.id), reason: "winner" })
        // The loser's balance change was rolled back with its savepoint; the caller's own write committed.
        expect(yield* ledger.balance(userId)).toBe(10)
        expect(yield* sql`SELECT id FROM ledger_test_generations WHERE id = ${key}`).toHaveLength(1)
      })
    ))

  for (const via of ["debit", "withCharge"] as const) {
    it.effect(`a deadlock that hits a ${via} is retried (the whole transaction), never surfaced, and counted`, () =>
      withClient((client) =>
        Effect.gen(function*() {
          const ledger = yield* Ledger
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE IF NOT EXISTS ledger_test_generations (id text PRIMARY KEY, user_id uuid NOT NULL)`
          const userId = yield* fundedUser(10)
          const key = `deadlock:${userId}`
          const before = yield* retriesSoFar
          // Another transaction holds the key, uncommitted.
          yield* Effect.promise(() => client.query("BEGIN"))
          yield* Effect.promise(() =>
            client.query(
              `INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, idempotency_key)
               VALUES ($1, 0, 10, 'adjustment', 'held', $2)`,
              [userId, key]
            ))
          const params = { userId, amount: 3, key, reason: "deadlock" }
          const charged = yield* Effect.fork(
            via === "debit"
              ? ledger.debit(params)
              : ledger.withCharge(params, (charge) =>
                sql`INSERT INTO ledger_test_generations (id, user_id) VALUES (${key}, ${userId})`.pipe(Effect.as(charge)))
          )
          // It has locked the user row and waits on the key. Now the other transaction wants the user
          // row: a cycle. The ledger's side is the victim (this session's deadlock_timeout is longer),
          // is retried, and succeeds once the key is free.
          yield* blockedOnInsert
          yield* Effect.promise(() => client.query("UPDATE users SET name = 'held' WHERE id = $1", [userId]))
          yield* Effect.promise(() => client.query("ROLLBACK"))
          const entry = yield* Fiber.join(charged)
          expect(entry).toMatchObject({ delta: -3, balanceAfter: 7 })
          expect((yield* retriesSoFar) - before).toBeGreaterThanOrEqual(1)
          expect(yield* state(userId)).toEqual({ balance: 7, sum: 7, rows: 2 })
          const generations = yield* sql`SELECT id FROM ledger_test_generations WHERE id = ${key}`
          expect(generations).toHaveLength(via === "withCharge" ? 1 : 0)
        }), "SET deadlock_timeout = '20s'")
    )
  }

  it.effect(`a randomized ${MIX_SECONDS} s mix of debits, credits and refunds across 20 users keeps every invariant`, () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const sql = yield* SqlClient.SqlClient
      const users = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => fundedUser(100, i < 3 ? ["enterprise_unlimited"] : []),
        { concurrency: 4 }
      )
      const random = (n: number) => Math.floor(Math.random() * n)
      const pick = <A>(items: ReadonlyArray<A>): A => items[random(items.length)]!

      type Op =
        | { readonly op: "debit"; readonly userId: string; readonly amount: number; readonly key: string }
        | { readonly op: "credit"; readonly userId: string; readonly amount: number; readonly key: string; readonly kind: "purchase" | "bonus" | "adjustment" }
      const issued: Array<Op> = []
      /** What the ledger answered for each key that succeeded: a later answer for it must be the same row. */
      const seen = new Map<string, LedgerEntry>()
      const charges: Array<LedgerEntry> = []
      const refundOfCharge = new Map<string, number>()
      const problems: Array<string> = []
      const counts = { ok: 0, insufficient: 0, notFound: 0 }

      const remember = (entry: LedgerEntry) => {
        const prior = seen.get(entry.idempotencyKey)
        if (prior === undefined) {
          seen.set(entry.idempotencyKey, entry)
          if (entry.kind === "usage") charges.push(entry)
        } else if (prior.id !== entry.id) {
          problems.push(`key ${entry.idempotencyKey} answered rows ${prior.id} and ${entry.id}`)
        }
        counts.ok += 1
      }

      const run = (op: Op) =>
        Effect.suspend(() => {
          // Once a caller has been told a key succeeded, every later call with it must succeed too
          // (a call already in flight may still be refused: it read the balance before).
          const succeededBefore = seen.has(op.key)
          return (op.op === "debit"
            ? ledger.debit({ userId: op.userId, amount: op.amount, key: op.key, reason: "mix" })
            : ledger.credit({ userId: op.userId, amount: op.amount, key: op.key, kind: op.kind, reason: "mix" })).pipe(
            Effect.tap((entry) => Effect.sync(() => remember(entry))),
            Effect.catchTag("InsufficientCredits", () =>
              Effect.sync(() => {
                counts.insufficient += 1
                if (succeededBefore) problems.push(`key ${op.key} succeeded, then a later call was refused`)
              })),
            Effect.catchAll((error) => Effect.sync(() => problems.push(`${op.op} ${op.key}: ${error._tag}`)))
          )
        })

      const refund = (charge: LedgerEntry) =>
        ledger.refund({
          chargeKey: charge.idempotencyKey,
          ...(Math.random() < 0.5 ? { key: `mix-refund:${randomUUID()}` } : {}),
          reason: "mix"
        }).pipe(
          Effect.tap((entry) =>
            Effect.sync(() => {
              counts.ok += 1
              if (entry.refundOf !== charge.idempotencyKey || entry.delta !== -charge.delta || entry.userId !== charge.userId) {
                problems.push(`refund ${entry.idempotencyKey} does not mirror ${charge.idempotencyKey}`)
              }
              const prior = refundOfCharge.get(charge.idempotencyKey)
              if (prior === undefined) {
                refundOfCharge.set(charge.idempotencyKey, entry.id)
                seen.set(entry.idempotencyKey, entry)
              } else if (prior !== entry.id) {
                problems.push(`charge ${charge.idempotencyKey} refunded twice: ${prior} and ${entry.id}`)
              }
            })),
          Effect.catchAll((error) => Effect.sync(() => problems.push(`refund ${charge.idempotencyKey}: ${error._tag}`)))
        )

      /** Sometimes a delivery arrives twice at once, as a retried request or a redelivered job would. */
      const maybeTwice = <A, R>(effect: Effect.Effect<A, never, R>) =>
        Math.random() < 0.2 ? Effect.all([effect, effect], { concurrency: 2, discard: true }) : effect

      const step = Effect.suspend(() => {
        const r = Math.random()
        if (r < 0.45) {
          const op: Op = { op: "debit", userId: pick(users), amount: 1 + random(20), key: `mix-debit:${randomUUID()}` }
          issued.push(op)
          return maybeTwice(run(op))
        }
        if (r < 0.55 && issued.length > 0) return run(pick(issued))
        if (r < 0.75) {
          const op: Op = {
            op: "credit",
            userId: pick(users),
            amount: 1 + random(20),
            key: `mix-credit:${randomUUID()}`,
            kind: pick(["purchase", "bonus", "adjustment"] as const)
          }
          issued.push(op)
          return maybeTwice(run(op))
        }
        if (r < 0.95 && charges.length > 0) return maybeTwice(refund(pick(charges)))
        return ledger.refund({ chargeKey: `mix-missing:${randomUUID()}`, reason: "mix" }).pipe(
          Effect.matchEffect({
            onFailure: (error) =>
              Effect.sync(() => {
                if (error._tag === "ChargeNotFound") counts.notFound += 1
                else problems.push(`refund of a missing charge: ${error._tag}`)
              }),
            onSuccess: () => Effect.sync(() => problems.push("refund of a missing charge succeeded"))
          })
        )
      })

      const deadline = Date.now() + MIX_SECONDS * 1000
      const worker = Effect.whileLoop({ while: () => Date.now() < deadline, body: () => step, step: () => undefined })
      yield* Effect.all(Array.from({ length: 16 }, () => worker), { concurrency: "unbounded", discard: true })
      expect(problems).toEqual([])
      expect(counts.ok).toBeGreaterThan(100)
      expect(counts.insufficient).toBeGreaterThan(0)

      const perUser = yield* sql<{ id: string; balance: string; sum: string; newest: string | null }>`
        SELECT u.id, u.balance, COALESCE(SUM(l.delta), 0) AS sum,
               (SELECT balance_after FROM credit_ledger n WHERE n.user_id = u.id ORDER BY n.id DESC LIMIT 1) AS newest
        FROM users u LEFT JOIN credit_ledger l ON l.user_id = u.id
        WHERE u.id IN ${sql.in(users)} GROUP BY u.id`
      expect(perUser).toHaveLength(20)
      for (const row of perUser) {
        expect(Number(row.balance)).toBeGreaterThanOrEqual(0)
        expect(row.sum).toBe(row.balance)
        expect(row.newest).toBe(row.balance)
      }
      // Stronger: every row's balance_after is the running sum of the user's deltas in id order.
      const [drift] = yield* sql<{ n: number }>`
        SELECT count(*)::int AS n FROM (
          SELECT balance_after, SUM(delta) OVER (PARTITION BY user_id ORDER BY id) AS running
          FROM credit_ledger WHERE user_id IN ${sql.in(users)}
        ) s WHERE running <> balance_after`
      expect(drift!.n).toBe(0)
      const badRefunds = yield* sql<{ key: string }>`
        SELECT r.idempotency_key AS key FROM credit_ledger r
        LEFT JOIN credit_ledger c ON c.idempotency_key = r.refund_of
        WHERE r.user_id IN ${sql.in(users)} AND (r.kind = 'refund' OR r.refund_of IS NOT NULL)
          AND (r.kind <> 'refund' OR c.id IS NULL OR c.kind <> 'usage' OR c.user_id <> r.user_id OR c.delta <> -r.delta)`
      expect(badRefunds).toEqual([])
      const repeated = yield* sql<{ key: string }>`
        SELECT idempotency_key AS key FROM credit_ledger GROUP BY idempotency_key HAVING count(*) > 1
        UNION ALL
        SELECT refund_of FROM credit_ledger WHERE refund_of IS NOT NULL GROUP BY refund_of HAVING count(*) > 1`
      expect(repeated).toEqual([])
      const enterpriseCharges = yield* sql<{ n: number }>`
        SELECT count(*)::int AS n FROM credit_ledger
        WHERE user_id IN ${sql.in(users.slice(0, 3))} AND kind IN ('usage', 'refund') AND delta <> 0`
      expect(enterpriseCharges[0]!.n).toBe(0)
      // Nothing happened that no caller was told about, and everything callers were told is there.
      const mixRows = yield* sql<{ id: string; idempotency_key: string }>`
        SELECT id, idempotency_key FROM credit_ledger WHERE user_id IN ${sql.in(users)} AND idempotency_key NOT LIKE 'fund:%'`
      expect(mixRows.length).toBe(seen.size)
      for (const row of mixRows) expect(seen.get(row.idempotency_key)?.id).toBe(Number(row.id))
      console.info(
        `ledger mix: ${MIX_SECONDS} s, ${counts.ok} successful operations, ${counts.insufficient} refused for credits, ` +
          `${counts.notFound} unknown charges, ${mixRows.length} rows, ${refundOfCharge.size} refunds`
      )
    }), { timeout: (MIX_SECONDS + 60) * 1000 })
})
