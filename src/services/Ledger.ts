import { SqlClient, SqlError } from "@effect/sql"
import { Effect, Metric, Option, Predicate, Schedule, Schema } from "effect"
import { InsufficientCredits } from "../http/ApiError.js"
import { ChargeNotFound, IdempotencyKeyReused, InvalidAmount, NotRefundable, UserNotFound } from "./LedgerError.js"

export const LedgerKind = Schema.Literal("purchase", "bonus", "usage", "refund", "adjustment")
export type LedgerKind = typeof LedgerKind.Type
export type DebitKind = "usage" | "adjustment"
export type CreditKind = "purchase" | "bonus" | "adjustment"

/** pg returns int8 as a string; the schema holds balances to the safe-integer range, so this is exact. */
const Int8 = Schema.NumberFromString.pipe(Schema.int())

const LedgerRow = Schema.Struct({
  id: Int8,
  userId: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("user_id")),
  delta: Int8,
  balanceAfter: Schema.propertySignature(Int8).pipe(Schema.fromKey("balance_after")),
  kind: LedgerKind,
  reason: Schema.String,
  reference: Schema.NullOr(Schema.String),
  idempotencyKey: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("idempotency_key")),
  refundOf: Schema.propertySignature(Schema.NullOr(Schema.String)).pipe(Schema.fromKey("refund_of")),
  createdAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("created_at"))
})

/** One row of credit_ledger. `delta` is signed: negative for charges, positive for credits and refunds. */
export interface LedgerEntry extends Schema.Schema.Type<typeof LedgerRow> {}

const UserRow = Schema.Struct({ balance: Int8, tags: Schema.Array(Schema.String) })
const decodeEntries = Schema.decodeUnknown(Schema.Array(LedgerRow))
const decodeUsers = Schema.decodeUnknown(Schema.Array(UserRow))

export interface DebitParams {
  readonly userId: string
  readonly amount: number
  /** Idempotency key: a repeat returns the first result. For a job, the generation id. */
  readonly key: string
  readonly reason: string
  readonly reference?: string | undefined
  readonly kind?: DebitKind | undefined
}

export interface CreditParams {
  readonly userId: string
  readonly amount: number
  readonly key: string
  readonly kind: CreditKind
  readonly reason: string
  readonly reference?: string | undefined
}

export interface RefundParams {
  /** The idempotency key of the usage charge to refund. */
  readonly chargeKey: string
  /** Defaults to `refund:<chargeKey>`. A charge is refunded once whatever key a repeat uses. */
  readonly key?: string | undefined
  readonly reason: string
}

export interface HistoryPage {
  /** Newest first. */
  readonly items: ReadonlyArray<LedgerEntry>
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  readonly nextCursor: number | null
}

export const ENTERPRISE_UNLIMITED = "enterprise_unlimited"

/**
 * What a debit takes from this user: the one place the enterprise exemption is decided, for every
 * app. Their usage is charged 0 (the 0-delta row is still written, so its refund returns 0).
 * Adjustments are an operator's corrections and apply to everyone.
 */
export const chargeAmount = (user: { readonly tags: ReadonlyArray<string> }, amount: number, kind: DebitKind): number =>
  kind === "usage" && user.tags.includes(ENTERPRISE_UNLIMITED) ? 0 : amount

/** Counts transactions re-run after a serialization failure (40001) or a deadlock (40P01). */
export const serializationRetries = Metric.counter("ledger_serialization_retries", {
  description: "ledger transactions retried after a serialization failure or deadlock",
  incremental: true
})

/** First key of the two-int advisory lock space (disjoint from the one-bigint space the migrator uses). */
export const LEDGER_LOCK_NAMESPACE = 0x4c454447

const MAX_BALANCE = Number.MAX_SAFE_INTEGER
const HISTORY_MAX_LIMIT = 100

const isRetryable = (error: unknown): boolean =>
  error instanceof SqlError.SqlError &&
  Predicate.hasProperty(error.cause, "code") &&
  (error.cause.code === "40001" || error.cause.code === "40P01")

const retryPolicy = Schedule.exponential("5 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(6)),
  Schedule.checkEffect((error: unknown) =>
    isRetryable(error) ? Effect.as(Metric.increment(serializationRetries), true) : Effect.succeed(false))
)

const checkAmount = (amount: number) =>
  Number.isSafeInteger(amount) && amount > 0
    ? Effect.void
    : Effect.fail(new InvalidAmount({ amount, reason: "amounts are positive safe integers" }))

/**
 * The one credit ledger. `users.balance` is the balance; every change to it is one transaction of a
 * conditional UPDATE plus an INSERT into the append-only `credit_ledger`, under a transaction-scoped
 * advisory lock on the idempotency key taken first, so a repeated key (even concurrently) waits for
 * the first, then finds its row and returns it without touching the balance.
 *
 * Every operation composes inside a caller's `sql.withTransaction` (it becomes a savepoint, so a
 * failed debit leaves the caller's transaction usable). Reserve-then-settle for jobs: charge in the
 * transaction that creates the generation row, with `withCharge` (or `transaction`), keyed by the
 * generation id; the job's terminal-failure compensation calls `refund({ chargeKey })`.
 *
 * Serialization failures and deadlocks are retried here, with a jittered backoff, when the ledger
 * owns the transaction (a direct call, `transaction`, `withCharge`). Inside a transaction the caller
 * opened, only the whole transaction can be retried, so the SqlError reaches the caller.
 */
export class Ledger extends Effect.Service<Ledger>()("app/Ledger", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /**
     * Runs `effect` in a transaction: a new one, retried as a whole on 40001/40P01, or a savepoint
     * inside the caller's. A retried effect runs again from the start, so it must be database work
     * or idempotent calls (an enqueue keyed by the job id, say).
     */
    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError.SqlError, R> =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer) =>
        Option.isSome(outer)
          ? sql.withTransaction(effect)
          : sql.withTransaction(effect).pipe(
            // @effect/sql turns a failed COMMIT into a defect; a serialization failure there is still retryable.
            Effect.catchAllDefect((defect) =>
              isRetryable(defect) ? Effect.fail(defect as SqlError.SqlError) : Effect.die(defect)),
            Effect.retry(retryPolicy)
          ))

    const entries = <E, R>(rows: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
      Effect.flatMap(rows, (raw) => Effect.orDie(decodeEntries(raw)))

    /** Serializes every operation on these keys until the transaction ends; ordered, so two never deadlock. */
    const lockKeys = (first: string, second?: string) =>
      second === undefined
        ? sql`SELECT pg_advisory_xact_lock(${LEDGER_LOCK_NAMESPACE}, hashtext(${first}))`
        : sql`SELECT pg_advisory_xact_lock(${LEDGER_LOCK_NAMESPACE}, h)
              FROM (SELECT DISTINCT h FROM (VALUES (hashtext(${first})), (hashtext(${second}))) AS v (h) ORDER BY h) AS ordered`

    /** The user, and the ledger row already holding `key` if there is one, in one round trip. */
    const findUserAndKey = (userId: string, key: string) =>
      sql`
        SELECT u.balance, u.tags, l.*
        FROM users u LEFT JOIN credit_ledger l ON l.idempotency_key = ${key}
        WHERE u.id = ${userId}`.pipe(
        Effect.flatMap((raw) => {
          const row = raw[0]
          if (row === undefined) return Effect.fail(new UserNotFound({ userId }))
          return Effect.orDie(Effect.all({
            user: decodeUsers([row]).pipe(Effect.map((users) => users[0]!)),
            prior: row["id"] === null ? Effect.succeed(undefined) : decodeEntries([row]).pipe(Effect.map((rows) => rows[0]))
          }))
        })
      )

    const findUser = (userId: string) =>
      sql`SELECT balance, tags FROM users WHERE id = ${userId}`.pipe(
        Effect.flatMap((raw) => Effect.orDie(decodeUsers(raw))),
        Effect.flatMap((rows) => rows[0] === undefined ? Effect.fail(new UserNotFound({ userId })) : Effect.succeed(rows[0]))
      )

    /** A repeated key returns the first result, provided it names the same operation. */
    const replay = (prior: LedgerEntry, expected: { userId: string; kind: LedgerKind; delta: number }) =>
      prior.userId === expected.userId && prior.kind === expected.kind &&
        (prior.delta === expected.delta || (expected.kind === "usage" && prior.delta === 0))
        ? Effect.succeed(prior)
        : Effect.fail(new IdempotencyKeyReused({ key: prior.idempotencyKey }))

    const debit = Effect.fn("Ledger.debit")(function*(params: DebitParams) {
      yield* checkAmount(params.amount)
      const kind = params.kind ?? "usage"
      return yield* transaction(Effect.gen(function*() {
        yield* lockKeys(params.key)
        const { user, prior } = yield* findUserAndKey(params.userId, params.key)
        if (prior !== undefined) return yield* replay(prior, { userId: params.userId, kind, delta: -params.amount })
        const charge = chargeAmount(user, params.amount, kind)
        const [entry] = yield* entries(sql`
          WITH moved AS (
            UPDATE users SET balance = balance - ${charge}
            WHERE id = ${params.userId} AND balance >= ${charge}
            RETURNING balance
          )
          INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, reference, idempotency_key)
          SELECT ${params.userId}::uuid, ${-charge}::bigint, moved.balance, ${kind}, ${params.reason},
                 ${params.reference ?? null}::text, ${params.key}
          FROM moved
          RETURNING *`)
        if (entry !== undefined) return entry
        const current = (yield* findUser(params.userId)).balance
        return yield* new InsufficientCredits({ message: "Insufficient credits", required: charge, current })
      }))
    })

    const credit = Effect.fn("Ledger.credit")(function*(params: CreditParams) {
      yield* checkAmount(params.amount)
      return yield* transaction(Effect.gen(function*() {
        yield* lockKeys(params.key)
        const { prior } = yield* findUserAndKey(params.userId, params.key)
        if (prior !== undefined) return yield* replay(prior, { userId: params.userId, kind: params.kind, delta: params.amount })
        const [entry] = yield* entries(sql`
          WITH moved AS (
            UPDATE users SET balance = balance + ${params.amount}
            WHERE id = ${params.userId} AND balance <= ${MAX_BALANCE - params.amount}
            RETURNING balance
          )
          INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, reference, idempotency_key)
          SELECT ${params.userId}::uuid, ${params.amount}::bigint, moved.balance, ${params.kind}, ${params.reason},
                 ${params.reference ?? null}::text, ${params.key}
          FROM moved
          RETURNING *`)
        if (entry !== undefined) return entry
        return yield* new InvalidAmount({ amount: params.amount, reason: "the balance would exceed the largest safe integer" })
      }))
    })

    const refund = Effect.fn("Ledger.refund")(function*(params: RefundParams) {
      const { chargeKey } = params
      const key = params.key ?? `refund:${chargeKey}`
      if (key === chargeKey) return yield* new IdempotencyKeyReused({ key })
      return yield* transaction(Effect.gen(function*() {
        yield* lockKeys(chargeKey, key)
        const rows = yield* entries(sql`
          SELECT * FROM credit_ledger
          WHERE idempotency_key IN (${chargeKey}, ${key}) OR refund_of = ${chargeKey}`)
        const prior = rows.find((row) => row.refundOf === chargeKey)
        if (prior !== undefined) return prior
        if (rows.some((row) => row.idempotencyKey === key)) return yield* new IdempotencyKeyReused({ key })
        const charge = rows.find((row) => row.idempotencyKey === chargeKey)
        if (charge === undefined) return yield* new ChargeNotFound({ chargeKey })
        if (charge.kind !== "usage") return yield* new NotRefundable({ key: chargeKey, kind: charge.kind })
        // Exactly what the charge took: 0 for an enterprise charge.
        const amount = -charge.delta
        const [entry] = yield* entries(sql`
          WITH moved AS (
            UPDATE users SET balance = balance + ${amount} WHERE id = ${charge.userId} RETURNING balance
          )
          INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, reference, idempotency_key, refund_of)
          SELECT ${charge.userId}::uuid, ${amount}::bigint, moved.balance, 'refund', ${params.reason},
                 ${charge.reference}::text, ${key}, ${chargeKey}
          FROM moved
          RETURNING *`)
        if (entry === undefined) return yield* new UserNotFound({ userId: charge.userId })
        return entry
      }))
    })

    const balance = Effect.fn("Ledger.balance")(function*(userId: string) {
      return (yield* findUser(userId)).balance
    })

    const history = Effect.fn("Ledger.history")(function*(
      userId: string,
      options: { readonly cursor?: number | undefined; readonly limit: number }
    ) {
      const limit = Math.min(HISTORY_MAX_LIMIT, Math.max(1, Math.trunc(options.limit) || 1))
      const { cursor } = options
      if (cursor !== undefined && !Number.isSafeInteger(cursor)) return yield* Effect.dieMessage(`invalid history cursor ${cursor}`)
      const rows = yield* entries(
        cursor === undefined
          ? sql`SELECT * FROM credit_ledger WHERE user_id = ${userId} ORDER BY id DESC LIMIT ${limit + 1}`
          : sql`SELECT * FROM credit_ledger WHERE user_id = ${userId} AND id < ${cursor} ORDER BY id DESC LIMIT ${limit + 1}`
      )
      const items = rows.slice(0, limit)
      const last = items[items.length - 1]
      const page: HistoryPage = { items, nextCursor: rows.length > limit && last !== undefined ? last.id : null }
      return page
    })

    /**
     * Charges and runs `use` (typically: insert the generation row, enqueue its job) in one
     * transaction: if `use` fails, the charge is rolled back with it.
     */
    const withCharge = <A, E, R>(params: DebitParams, use: (charge: LedgerEntry) => Effect.Effect<A, E, R>) =>
      transaction(Effect.flatMap(debit(params), use)).pipe(Effect.withSpan("Ledger.withCharge"))

    return { debit, credit, refund, balance, history, transaction, withCharge } as const
  })
}) {}
