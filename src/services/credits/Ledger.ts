import { SqlClient, SqlError, type Statement } from "@effect/sql"
import { Effect, Metric, Option, Schedule, Schema } from "effect"
import { sqlStateOf } from "../platform/errorCode.js"
import { LeanSql } from "../platform/LeanSql.js"
import { countedAs } from "./metrics.js"
import {
  ChargeNotFound,
  IdempotencyKeyReused,
  InsufficientCredits,
  InvalidAmount,
  NotRefundable,
  type ReplayMismatch,
  UserNotFound
} from "./LedgerError.js"
import { type CreditKind, type DebitKind, LedgerKind } from "./LedgerKind.js"


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
  /** What the operation asked for, before the enterprise exemption; null on 0-delta rows from before migration 0005. */
  requestedAmount: Schema.propertySignature(Schema.NullOr(Int8)).pipe(Schema.fromKey("requested_amount")),
  createdAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("created_at"))
})

/** One row of credit_ledger. `delta` is signed: negative for charges, positive for credits and refunds. */
export interface LedgerEntry extends Schema.Schema.Type<typeof LedgerRow> {}

const UserRow = Schema.Struct({ balance: Int8, tags: Schema.Array(Schema.String) })
const decodeEntries = Schema.decodeUnknown(Schema.Array(LedgerRow))
const decodeUsers = Schema.decodeUnknown(Schema.Array(UserRow))
const decodeBalances = Schema.decodeUnknown(Schema.Array(Schema.Struct({ balance: Int8 })))

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
  /**
   * A partial refund (the undelivered share of a generation): at most what the charge took, which is
   * the default. Still one refund per charge: a repeat returns the first, whatever amount it names.
   */
  readonly amount?: number | undefined
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
 * What a debit of `amount` takes from the user row it updates, in SQL over that row's `tags`: the one
 * place the enterprise exemption is decided, for every app. Their usage is charged 0 (the 0-delta row
 * is still written, so its refund returns 0). Adjustments are an operator's corrections and apply to
 * everyone.
 */
const takenBy = (sql: SqlClient.SqlClient, amount: number, kind: DebitKind) =>
  kind === "usage"
    ? sql`(CASE WHEN ${ENTERPRISE_UNLIMITED} = ANY(tags) THEN 0 ELSE ${amount}::bigint END)`
    : sql`${amount}::bigint`

/** Counts transactions re-run after a serialization failure (40001) or a deadlock (40P01). */
export const serializationRetries = Metric.counter("ledger_serialization_retries", {
  description: "ledger transactions retried after a serialization failure or deadlock",
  incremental: true
})

const MAX_BALANCE = Number.MAX_SAFE_INTEGER
const HISTORY_MAX_LIMIT = 100

/** serialization_failure and deadlock_detected: the transaction may succeed when run again. */
const RETRYABLE_SQLSTATES: ReadonlySet<string | undefined> = new Set(["40001", "40P01"])

const isRetryable = (error: unknown): error is SqlError.SqlError =>
  error instanceof SqlError.SqlError && RETRYABLE_SQLSTATES.has(sqlStateOf(error))

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

/** What one mutation statement did. */
type Written =
  | { readonly _tag: "Written"; readonly entry: LedgerEntry }
  /** Its conditional UPDATE matched no row (balance too low, user gone). */
  | { readonly _tag: "Refused" }
  /** Another operation holds its idempotency key, or the charge's one refund: a unique violation. */
  | { readonly _tag: "Duplicate"; readonly error: SqlError.SqlError }

/**
 * The one credit ledger. `users.balance` is the balance; every change to it is ONE statement, a
 * conditional UPDATE of the balance and the INSERT of its `credit_ledger` row in one CTE, so it is a
 * transaction of its own (or a savepoint inside the caller's). On its own, the user's row lock is
 * held only while the server runs that statement, never across a client round trip.
 *
 * The UNIQUE constraints are the idempotency authority. Each operation first reads the key; a
 * repeat finds the first row and returns it without touching the balance. A repeat racing the
 * first (both read nothing) is decided by the unique index: the loser's statement fails as a whole
 * (23505), so its balance change never exists, and it returns the winner's row. The same holds for
 * the one refund per charge (`refund_of`).
 *
 * Every operation composes inside a caller's `sql.withTransaction`. Reserve-then-settle for jobs:
 * charge in the transaction that creates the generation row, with `withCharge` (or `transaction`),
 * keyed by the generation id; the job's terminal-failure compensation calls `refund({ chargeKey })`.
 *
 * Serialization failures and deadlocks are retried here, with a jittered backoff, when the ledger
 * runs the transaction (a direct call, `transaction`, `withCharge`). Inside a transaction the caller
 * opened, only the whole transaction can be retried, so the SqlError reaches the caller.
 */
export class Ledger extends Effect.Service<Ledger>()("app/Ledger", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lean = yield* LeanSql

    const inCallerTransaction = Effect.zipWith(
      Effect.serviceOption(SqlClient.TransactionConnection),
      lean.inTransaction,
      (caller, leanCaller) => Option.isSome(caller) || leanCaller
    )

    /** One attempt of an operation: retried whole on 40001/40P01 unless it runs in the caller's transaction. */
    const attempt = <A, E, R>(once: (nested: boolean) => Effect.Effect<A, E, R>) =>
      Effect.flatMap(inCallerTransaction, (nested) => nested ? once(true) : Effect.retry(once(false), retryPolicy))

    /**
     * Runs `effect` in a transaction: a new one, retried as a whole on 40001/40P01, or a savepoint
     * inside the caller's. A retried effect runs again from the start, so it must be database work
     * or idempotent calls (an enqueue keyed by the job id, say).
     */
    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError.SqlError, R> =>
      attempt((nested) =>
        nested
          ? sql.withTransaction(effect)
          : sql.withTransaction(effect).pipe(
            // @effect/sql turns a failed COMMIT into a defect; a serialization failure there is still retryable.
            Effect.catchAllDefect((defect) => isRetryable(defect) ? Effect.fail(defect) : Effect.die(defect))
          ))

    /**
     * Runs `effect` atomically: inside the caller's transaction when there is one (no savepoint, so a
     * failure fails the caller's transaction with it), else as `transaction` does. For work whose
     * failure the caller never recovers from inside its transaction, one round trip cheaper a call.
     */
    const atomic = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError.SqlError, R> =>
      Effect.flatMap(inCallerTransaction, (nested) => nested ? effect : transaction(effect))

    const entries = <E, R>(rows: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
      Effect.flatMap(rows, (raw) => Effect.orDie(decodeEntries(raw)))

    /** Inside the caller's transaction the statement gets a savepoint, so a unique violation leaves it usable. */
    const write = (statement: Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError>, nested: boolean) =>
      entries(nested ? sql.withTransaction(statement) : statement).pipe(
        Effect.map((rows): Written => rows[0] === undefined ? { _tag: "Refused" } : { _tag: "Written", entry: rows[0] }),
        Effect.catchIf((error) => sqlStateOf(error) === "23505", (error) => Effect.succeed<Written>({ _tag: "Duplicate", error }))
      )

    /**
     * A debit as two CTEs of one statement: `moved`, the conditional update of the balance (it needs
     * the funds; the exemption is takenBy's), and `charge`, its ledger row. `charge` is empty when the
     * update refused (too few credits, no such user).
     */
    const debitCtes = (change: {
      readonly userId: string
      readonly amount: number
      readonly kind: DebitKind
      readonly reason: string
      readonly reference: string | undefined
      readonly key: string
    }) => {
      const taken = takenBy(sql, change.amount, change.kind)
      return sql`
        moved AS (
          UPDATE users SET balance = balance - ${taken}
          WHERE id = ${change.userId} AND balance >= ${taken}
          RETURNING balance, ${taken} AS taken
        ),
        charge AS (
          INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, reference, idempotency_key, requested_amount)
          SELECT ${change.userId}::uuid, -moved.taken, moved.balance, ${change.kind}, ${change.reason},
                 ${change.reference ?? null}::text, ${change.key}, ${change.amount}::bigint
          FROM moved
          RETURNING *
        )`
    }

    /** A credit as one statement: the balance must stay a safe integer; no row comes back when it would not. */
    const creditStatement = (change: {
      readonly userId: string
      readonly amount: number
      readonly kind: CreditKind
      readonly reason: string
      readonly reference: string | undefined
      readonly key: string
    }) =>
      sql`
        WITH moved AS (
          UPDATE users SET balance = balance + ${change.amount}
          WHERE id = ${change.userId} AND balance <= ${MAX_BALANCE - change.amount}
          RETURNING balance
        )
        INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, reference, idempotency_key, requested_amount)
        SELECT ${change.userId}::uuid, ${change.amount}::bigint, moved.balance, ${change.kind}, ${change.reason},
               ${change.reference ?? null}::text, ${change.key}, ${change.amount}::bigint
        FROM moved
        RETURNING *`

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

    /**
     * A repeated key returns the first result, provided it names the same operation: user, kind, the amount
     * asked for (not the delta, which is 0 for an enterprise charge) and reference. The reason is free text
     * and is not compared. A 0-delta row from before migration 0005 has no recorded request: the delta is all
     * there is to compare, so any usage amount replays it.
     */
    const replay = (
      prior: LedgerEntry,
      expected: { userId: string; kind: LedgerKind; delta: number; amount: number; reference: string | undefined }
    ) => {
      const sameAmount = prior.requestedAmount === null
        ? prior.delta === expected.delta || (expected.kind === "usage" && prior.delta === 0)
        : prior.requestedAmount === expected.amount
      const mismatch: Array<ReplayMismatch> = [
        ...(prior.userId === expected.userId ? [] : ["user" as const]),
        ...(prior.kind === expected.kind ? [] : ["kind" as const]),
        ...(sameAmount ? [] : ["amount" as const]),
        ...(prior.reference === (expected.reference ?? null) ? [] : ["reference" as const])
      ]
      return mismatch.length === 0
        ? Effect.succeed(prior)
        : Effect.fail(new IdempotencyKeyReused({ key: prior.idempotencyKey, mismatch }))
    }

    const debit = Effect.fn("Ledger.debit")(function*(params: DebitParams) {
      yield* checkAmount(params.amount)
      const { userId, key } = params
      const kind = params.kind ?? "usage"
      const expected = { userId, kind, delta: -params.amount, amount: params.amount, reference: params.reference }
      return yield* attempt((nested) =>
        Effect.gen(function*() {
          const { prior } = yield* findUserAndKey(userId, key)
          if (prior !== undefined) return yield* replay(prior, expected)
          const written = yield* write(
            sql`WITH ${debitCtes({ userId, amount: params.amount, kind, reason: params.reason, reference: params.reference, key })}
                SELECT * FROM charge`,
            nested
          )
          if (written._tag === "Written") return written.entry
          // Refused, or beaten to the key: if the key now has a row, that is the answer.
          const now = yield* findUserAndKey(userId, key)
          if (now.prior !== undefined) return yield* replay(now.prior, expected)
          if (written._tag === "Duplicate") return yield* Effect.fail(written.error)
          return yield* new InsufficientCredits({ message: "Insufficient credits", required: params.amount, current: now.user.balance })
        })
      )
    }, countedAs("debit"))

    const credit = Effect.fn("Ledger.credit")(function*(params: CreditParams) {
      yield* checkAmount(params.amount)
      const { userId, key } = params
      const expected = { userId, kind: params.kind, delta: params.amount, amount: params.amount, reference: params.reference }
      return yield* attempt((nested) =>
        Effect.gen(function*() {
          const { prior } = yield* findUserAndKey(userId, key)
          if (prior !== undefined) return yield* replay(prior, expected)
          const written = yield* write(
            creditStatement({ userId, amount: params.amount, kind: params.kind, reason: params.reason, reference: params.reference, key }),
            nested
          )
          if (written._tag === "Written") return written.entry
          const now = yield* findUserAndKey(userId, key)
          if (now.prior !== undefined) return yield* replay(now.prior, expected)
          if (written._tag === "Duplicate") return yield* Effect.fail(written.error)
          return yield* new InvalidAmount({ amount: params.amount, reason: "the balance would exceed the largest safe integer" })
        })
      )
    }, countedAs("credit"))

    /** The refund already made for `chargeKey`, or the charge to refund (with its amount), or why not. */
    const refundable = (chargeKey: string, key: string) =>
      Effect.gen(function*() {
        const rows = yield* entries(sql`
          SELECT * FROM credit_ledger
          WHERE idempotency_key IN (${chargeKey}, ${key}) OR refund_of = ${chargeKey}`)
        const prior = rows.find((row) => row.refundOf === chargeKey)
        if (prior !== undefined) return { prior, charge: undefined }
        if (rows.some((row) => row.idempotencyKey === key)) return yield* new IdempotencyKeyReused({ key })
        const charge = rows.find((row) => row.idempotencyKey === chargeKey)
        if (charge === undefined) return yield* new ChargeNotFound({ chargeKey })
        if (charge.kind !== "usage") return yield* new NotRefundable({ key: chargeKey, kind: charge.kind })
        return { prior: undefined, charge }
      })

    const refund = Effect.fn("Ledger.refund")(function*(params: RefundParams) {
      const { chargeKey } = params
      const key = params.key ?? `refund:${chargeKey}`
      if (key === chargeKey) return yield* new IdempotencyKeyReused({ key })
      if (params.amount !== undefined && !(Number.isSafeInteger(params.amount) && params.amount >= 0)) {
        return yield* new InvalidAmount({ amount: params.amount, reason: "a refund amount is a whole number of credits, 0 or more" })
      }
      return yield* attempt((nested) =>
        Effect.gen(function*() {
          const { prior, charge } = yield* refundable(chargeKey, key)
          if (prior !== undefined) return prior
          // At most what the charge took (0 for an enterprise charge), however much was asked.
          const amount = Math.min(params.amount ?? -charge.delta, -charge.delta)
          const written = yield* write(
            sql`
              WITH moved AS (
                UPDATE users SET balance = balance + ${amount} WHERE id = ${charge.userId} RETURNING balance
              )
              INSERT INTO credit_ledger
                (user_id, delta, balance_after, kind, reason, reference, idempotency_key, refund_of, requested_amount)
              SELECT ${charge.userId}::uuid, ${amount}::bigint, moved.balance, 'refund', ${params.reason},
                     ${charge.reference}::text, ${key}, ${chargeKey}, ${params.amount ?? amount}::bigint
              FROM moved
              RETURNING *`,
            nested
          )
          if (written._tag === "Written") return written.entry
          if (written._tag === "Refused") return yield* new UserNotFound({ userId: charge.userId })
          // Another delivery refunded it first, or the key is taken.
          const now = yield* refundable(chargeKey, key)
          return now.prior !== undefined ? now.prior : yield* Effect.fail(written.error)
        })
      )
    }, countedAs("refund"))

    /**
     * A usage charge under a key no ledger row can hold yet (made from an id the caller has just drawn),
     * composed into the caller's own write so both are one statement, one round trip: `statement` puts
     * the charge's CTEs (`moved`, `charge`: see debitCtes) after its WITH and returns no row when
     * `charge` is empty. With nothing to replay, nothing is read first; only a refusal reads the
     * balance, to say why. Run it in a transaction (`atomic`) when more than the statement must commit with it.
     */
    const chargeWith = <A>(
      params: DebitParams,
      statement: (ctes: Statement.Fragment) => Effect.Effect<ReadonlyArray<A>, SqlError.SqlError>
    ): Effect.Effect<ReadonlyArray<A>, InvalidAmount | InsufficientCredits | UserNotFound | SqlError.SqlError> =>
      Effect.gen(function*() {
      yield* checkAmount(params.amount)
      const kind = params.kind ?? "usage"
      const rows = yield* statement(debitCtes({
        userId: params.userId,
        amount: params.amount,
        kind,
        reason: params.reason,
        reference: params.reference,
        key: params.key
      }))
      if (rows.length > 0) return rows
      const current = yield* balance(params.userId)
      return yield* new InsufficientCredits({ message: "Insufficient credits", required: params.amount, current })
      }).pipe(countedAs("debit"), Effect.withSpan("Ledger.chargeWith"))

    // Read on every balance request: untraced, since Effect.fn captures a stack trace per call even
    // while no span is exported (see platform/tracing.ts).
    const balance = Effect.fnUntraced(function*(userId: string) {
      const rows = yield* lean.run(sql`SELECT balance FROM users WHERE id = ${userId}`).pipe(
        Effect.flatMap((raw) => Effect.orDie(decodeBalances(raw)))
      )
      const row = rows[0]
      if (row === undefined) return yield* new UserNotFound({ userId })
      return row.balance
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

    return { debit, credit, refund, balance, history, transaction, atomic, chargeWith, withCharge } as const
  })
}) {}
