import { randomInt, randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { Ledger } from "../credits/Ledger.js"
import { defineJob } from "../jobs/JobDefinition.js"
import { JobQueues } from "../jobs/JobQueues.js"
import { ValidationError } from "../platform/DomainError.js"
import { LeanSql } from "../platform/LeanSql.js"
import { Redis } from "../platform/Redis.js"
import { Storage } from "../platform/Storage.js"
import { AppCatalog, GenerationJobPayload } from "./AppCatalog.js"
import { publishSettled } from "./GenerationEvents.js"
import { GenerationFinished, GenerationNotFound, GenerationsUnavailable } from "./GenerationError.js"

export const GenerationStatus = Schema.Literal("pending", "processing", "completed", "partial", "failed", "cancelled")
export type GenerationStatus = typeof GenerationStatus.Type

/** Still to settle: the only statuses a transition may start from. */
const ACTIVE: ReadonlyArray<GenerationStatus> = ["pending", "processing"]

/** One stored output: its Storage key and size (apps may add fields, kept as they are). */
export const GenerationOutput = Schema.Struct(
  { key: Schema.String, size: Schema.Int.pipe(Schema.nonNegative()) },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)
export type GenerationOutput = typeof GenerationOutput.Type

/** pg returns int8 as a string; the table holds money to the safe-integer range, so this is exact. */
const Int8 = Schema.NumberFromString.pipe(Schema.int())
const column = <A, I>(schema: Schema.Schema<A, I>, key: string) => Schema.propertySignature(schema).pipe(Schema.fromKey(key))

const GenerationRow = Schema.Struct({
  id: Schema.String,
  userId: column(Schema.String, "user_id"),
  app: Schema.String,
  projectId: column(Schema.NullOr(Schema.String), "project_id"),
  status: GenerationStatus,
  progress: Schema.Number,
  unitsRequested: column(Schema.Number, "units_requested"),
  unitsDelivered: column(Schema.Number, "units_delivered"),
  creditCost: column(Int8, "credit_cost"),
  /** What the ledger took: the cost, or 0 for a user exempt from usage charges. */
  charged: Int8,
  refunded: Int8,
  settings: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  seed: Schema.NullOr(Int8),
  outputs: Schema.Array(GenerationOutput),
  errorCode: column(Schema.NullOr(Schema.String), "error_code"),
  errorMessage: column(Schema.NullOr(Schema.String), "error_message"),
  createdAt: column(Schema.DateFromSelf, "created_at"),
  startedAt: column(Schema.NullOr(Schema.DateFromSelf), "started_at"),
  completedAt: column(Schema.NullOr(Schema.DateFromSelf), "completed_at")
})
export interface Generation extends Schema.Schema.Type<typeof GenerationRow> {}

const decodeRows = Schema.decodeUnknown(Schema.Array(GenerationRow))

const CreatedRow = Schema.extend(GenerationRow, Schema.Struct({ balance: Int8 }))
// The row as its statement returns it, but for its settings: those are what `create` was given (and are
// not walked again, a generation's settings can hold a whole clip list).
const decodeCreated = Schema.decodeUnknown(Schema.Struct({ ...GenerationRow.fields, balance: Int8, settings: Schema.Unknown }))

/** A generation just created, with its user's balance right after its charge. */
export interface CreatedGeneration extends Schema.Schema.Type<typeof CreatedRow> {}

export interface CreateParams {
  readonly userId: string
  readonly app: string
  readonly projectId?: string | undefined
  /** What the user asked for (images, clips...): the refund of a partial delivery is pro rata. */
  readonly units: number
  /** The price, in credits, of all `units`. */
  readonly cost: number
  readonly settings: Readonly<Record<string, unknown>>
  /** Drawn here when the app does not choose one. */
  readonly seed?: number | undefined
}

/** Where a settling transition goes: its status and what was delivered (the rest is refunded). */
interface Settlement {
  readonly status: "completed" | "partial" | "failed" | "cancelled"
  readonly delivered: number
  readonly outputs: ReadonlyArray<GenerationOutput>
  readonly error?: { readonly code: string; readonly message: string }
}

export type ListSort = "latest" | "oldest" | "name"

export interface ListParams {
  readonly app?: string | undefined
  readonly sort: ListSort
  readonly limit: number
}

const MAX_UNITS = 10_000
const MAX_PAGE = 100
const pageSize = (limit: number) => Math.min(MAX_PAGE, Math.max(1, Math.trunc(limit) || 1))
/** Advisory-lock namespace of generation rows (the two-key form; the migration lock uses the one-key form). */
export const ROW_LOCK_SPACE = 0x67656e
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The ledger key of a generation's charge: its id, so a retried create can never charge twice. */
export const chargeKey = (generationId: string) => `generation:${generationId}`

/**
 * Why the dead-letter admin must not re-run a generation job: its compensation has settled it
 * (failed and refunded), so a re-run would render without a charge. Refused rather than re-charged:
 * the user was told it failed and got the credits back; charging them again for a run they did not
 * ask for is worse than asking them to start a new one. A generation still pending or processing
 * (its compensation failed for good, so nothing was refunded) may be retried: it still holds its charge.
 */
export const generationRetryRefusal = (jobId: string) =>
  Effect.gen(function*() {
    if (!UUID.test(jobId)) return "it names no generation"
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ status: string }>`SELECT status FROM generations WHERE id = ${jobId}`
    const status = rows[0]?.status
    if (status === undefined) return "its generation does not exist (never stored, or deleted)"
    return (ACTIVE as ReadonlyArray<string>).includes(status)
      ? undefined
      : `its generation is already ${status} and settled (refunded when it failed); the user starts a new one`
  })

/** The job kind of an app's generations: the payload is the generation id, the row holds the rest. */
export const defineGenerationJob = (options: {
  readonly queue: string
  readonly timeout: `${number} ${"seconds" | "minutes"}`
  readonly concurrency: number
}) =>
  defineJob({
    ...options,
    payload: GenerationJobPayload,
    userIdOf: (payload) => payload.userId,
    refuseRetry: generationRetryRefusal
  })

/**
 * What is refunded when `delivered` of `requested` units were delivered: the undelivered share of
 * what was charged, rounded up (in the user's favour), so a partial delivery never costs more than
 * its share and a delivery of nothing refunds everything. BigInt, so exact for any safe integer.
 * Of what was charged, not of the price: a user exempt from usage charges (charged 0) gets 0 back.
 */
export const refundFor = (charged: number, requested: number, delivered: number) =>
  Number((BigInt(charged) * BigInt(requested - delivered) + BigInt(requested - 1)) / BigInt(requested))

/**
 * The one generation flow every app uses: create (row, charge and enqueue in one transaction),
 * then the worker's start, progress and complete, or fail (from the job's compensation) or cancel.
 * Every transition is a conditional UPDATE on the status, so a settled generation is never
 * overwritten (a late completion after a cancel changes nothing), and progress never goes back.
 *
 * Settling (complete, fail, cancel) refunds what was not delivered in the transaction of the status
 * change; only the transition that settles refunds, so it happens once however often a settle is
 * repeated, and the ledger refunds a charge once (a partial refund names the undelivered share).
 */
export class Generations extends Effect.Service<Generations>()("app/Generations", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lean = yield* LeanSql
    const ledger = yield* Ledger
    const queues = yield* JobQueues
    const catalog = yield* AppCatalog
    const storage = yield* Storage
    const redis = yield* Redis

    const rows = <E, R>(query: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
      Effect.flatMap(query, (raw) => Effect.orDie(decodeRows(raw)))
    const first = <E, R>(query: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
      Effect.map(rows(query), (found) => Option.fromNullable(found[0]))

    const unavailable = (what: string) => (cause: unknown) =>
      Effect.logWarning(`generations: ${what} failed`, { error: String(cause) }).pipe(
        Effect.zipRight(Effect.fail(new GenerationsUnavailable({ message: "Generations are unavailable right now; try again shortly" })))
      )

    /**
     * Held by a create until it commits, and taken by the worker before it reads the row: the job is
     * enqueued inside the create's transaction, so its worker may start before the row is visible.
     * Waiting on the lock tells "not committed yet" from "never committed" (rolled back).
     */
    const lockRow = (id: string) => sql`SELECT pg_advisory_xact_lock(${ROW_LOCK_SPACE}, hashtext(${id}))`

    const create = Effect.fn("Generations.create")(function*(params: CreateParams) {
      const app = catalog.get(params.app)
      // A coming-soon app is listed but has no worker yet: its jobs would wait for ever.
      if (app === undefined || app.comingSoon) {
        return yield* new ValidationError({ message: `The app "${params.app}" is not available`, field: "app" })
      }
      if (!Number.isSafeInteger(params.units) || params.units < 1 || params.units > MAX_UNITS) {
        return yield* new ValidationError({ message: `units must be a whole number from 1 to ${MAX_UNITS}`, field: "units" })
      }
      if (!Number.isSafeInteger(params.cost) || params.cost < 1) {
        return yield* new ValidationError({ message: "cost must be a positive whole number of credits", field: "cost" })
      }
      if (params.projectId !== undefined && !UUID.test(params.projectId)) {
        return yield* new ValidationError({ message: "projectId must be a UUID", field: "projectId" })
      }
      if (params.seed !== undefined && (!Number.isSafeInteger(params.seed) || params.seed < 0)) {
        return yield* new ValidationError({ message: "seed must be a non-negative whole number", field: "seed" })
      }
      const id = randomUUID()
      const seed = params.seed ?? randomInt(0, 2 ** 31)
      // One statement: the row's advisory lock, the charge and the row (no row when the charge is
      // refused); then the enqueue, in the same transaction: a queue that is down rolls it all back.
      return yield* ledger.atomic(Effect.gen(function*() {
        const created = yield* ledger.chargeWith({
          userId: params.userId,
          amount: params.cost,
          key: chargeKey(id),
          reason: `${app.name}: ${params.units} ${params.units === 1 ? "unit" : "units"}`,
          reference: `generation:${id}`
        }, (charge) =>
          lean.run(sql`
            WITH ${charge},
            locked AS (SELECT pg_advisory_xact_lock(${ROW_LOCK_SPACE}, hashtext(${id}))),
            created AS (
              INSERT INTO generations (id, user_id, app, project_id, units_requested, credit_cost, charged, settings, seed)
              SELECT ${id}, ${params.userId}, ${app.appId}, ${params.projectId ?? null}, ${params.units}, ${params.cost},
                     -charge.delta, ${JSON.stringify(params.settings)}::jsonb, ${seed}
              FROM charge CROSS JOIN locked
              RETURNING *
            )
            SELECT created.*, charge.balance_after AS balance FROM created CROSS JOIN charge`))
        const generation: CreatedGeneration = { ...yield* Effect.orDie(decodeCreated(created[0])), settings: params.settings }
        yield* queues.enqueue(app.job, id, { generationId: id, userId: params.userId }, { fresh: true })
        return generation
      })).pipe(
        Effect.catchTags({
          JobQueueUnavailable: unavailable("enqueue"),
          SqlError: unavailable("create"),
          InvalidJobId: Effect.die,
          JobConflict: Effect.die,
          InvalidAmount: Effect.die,
          UserNotFound: Effect.die
        })
      )
    })

    /** Marks it processing (again, on a retried attempt); None when there is nothing to run. */
    const start = Effect.fn("Generations.start")(function*(id: string) {
      return yield* sql.withTransaction(Effect.gen(function*() {
        yield* lockRow(id)
        return yield* first(sql`
          UPDATE generations
          SET status = 'processing', started_at = COALESCE(started_at, clock_timestamp()), updated_at = clock_timestamp()
          WHERE id = ${id} AND status IN ${sql.in(ACTIVE)}
          RETURNING *`)
      }))
    })

    /** Moves progress (and units done) forward only; false once the generation is no longer processing. */
    const progress = Effect.fn("Generations.progress")(function*(id: string, percent: number, delivered?: number) {
      const p = Math.max(0, Math.min(100, Math.floor(Number.isFinite(percent) ? percent : 0)))
      const d = delivered === undefined || !Number.isFinite(delivered) ? 0 : Math.max(0, Math.floor(delivered))
      const updated = yield* sql`
        UPDATE generations
        SET progress = GREATEST(progress, ${p}), units_delivered = GREATEST(units_delivered, LEAST(${d}, units_requested)),
            updated_at = clock_timestamp()
        WHERE id = ${id} AND status = 'processing'
        RETURNING id`
      return updated.length > 0
    })

    /** The status, or None when the row is gone. */
    const status = Effect.fn("Generations.status")(function*(id: string) {
      const found = yield* sql<{ status: GenerationStatus }>`SELECT status FROM generations WHERE id = ${id}`
      return Option.map(Option.fromNullable(found[0]), (row) => row.status)
    })

    /** Refunds the undelivered share the settling UPDATE recorded in `refunded`: one partial refund of the charge. */
    const refundUndelivered = (generation: Generation) =>
      generation.refunded === 0
        ? Effect.void
        : ledger.refund({
          chargeKey: chargeKey(generation.id),
          amount: generation.refunded,
          reason: generation.status === "partial"
            ? `Refund: ${generation.unitsRequested - generation.unitsDelivered} of ${generation.unitsRequested} not delivered`
            : `Refund: generation ${generation.status}`
        })

    /** Tells the user's live-progress sockets (if any) how the generation ended. */
    const announce = (generation: Generation) => {
      const { status } = generation
      // Unreachable: announced only after a settling UPDATE.
      if (status === "pending" || status === "processing") return Effect.void
      return publishSettled(redis, generation.userId, {
        type: status === "partial" ? "completed" : status,
        generationId: generation.id,
        status,
        progress: generation.progress,
        unitsRequested: generation.unitsRequested,
        unitsDelivered: generation.unitsDelivered,
        refunded: generation.refunded,
        errorCode: generation.errorCode,
        errorMessage: generation.errorMessage
      })
    }

    /**
     * The one settling transition, from one of `from`: `decide` reads the locked row and names the
     * status and what was delivered; the rest is refunded (refundFor) in the same transaction. None
     * when the row is not in `from` (settled already, say): then nothing changes.
     */
    const settle = (id: string, from: ReadonlyArray<GenerationStatus>, decide: (generation: Generation) => Settlement) =>
      ledger.transaction(Effect.gen(function*() {
        const locked = yield* first(sql`SELECT * FROM generations WHERE id = ${id} AND status IN ${sql.in(from)} FOR UPDATE`)
        if (Option.isNone(locked)) return Option.none<Generation>()
        const current = locked.value
        const to = decide(current)
        const delivered = Math.max(0, Math.min(current.unitsRequested, Math.floor(to.delivered)))
        const settled = yield* first(sql`
          UPDATE generations
          SET status = ${to.status}, units_delivered = ${delivered},
              refunded = ${refundFor(current.charged, current.unitsRequested, delivered)},
              outputs = ${JSON.stringify(to.outputs)}::jsonb,
              progress = ${to.status === "completed" || to.status === "partial" ? 100 : current.progress},
              error_code = ${to.error?.code ?? null}, error_message = ${to.error?.message ?? null},
              completed_at = clock_timestamp(), updated_at = clock_timestamp()
          WHERE id = ${id}
          RETURNING *`)
        const generation = Option.getOrThrow(settled)
        yield* refundUndelivered(generation)
        return Option.some(generation)
      })).pipe(
        // After the commit, so a socket never hears of a settlement that rolled back.
        Effect.tap(Option.match({ onNone: () => Effect.void, onSome: announce })),
        // None can happen: the refund names this generation's own usage charge, for at most what it took.
        Effect.catchTags({
          InvalidAmount: Effect.die,
          IdempotencyKeyReused: Effect.die,
          UserNotFound: Effect.die,
          ChargeNotFound: Effect.die,
          NotRefundable: Effect.die
        })
      )

    /**
     * Completed with all units, partial with fewer (the rest refunded), failed with none. None when it
     * is no longer processing (cancelled meanwhile, say): the outputs are then not the user's.
     */
    const complete = Effect.fn("Generations.complete")(function*(id: string, outputs: ReadonlyArray<GenerationOutput>, delivered: number) {
      const units = Number.isFinite(delivered) ? Math.floor(delivered) : 0
      return yield* settle(id, ["processing"], (current): Settlement =>
        units >= current.unitsRequested
          ? { status: "completed", delivered: units, outputs }
          : units >= 1
          ? { status: "partial", delivered: units, outputs }
          : { status: "failed", delivered: 0, outputs, error: { code: "NO_OUTPUT", message: "The generation produced nothing. Your credits were refunded." } })
    })

    /** Failed for good (the job's compensation): everything charged is refunded. */
    const fail = Effect.fn("Generations.fail")(function*(id: string, code: string, message: string) {
      return yield* settle(id, ACTIVE, () => ({ status: "failed", delivered: 0, outputs: [], error: { code, message } }))
    })

    const owned = (id: string, userId: string) =>
      UUID.test(id)
        ? first(sql`SELECT * FROM generations WHERE id = ${id} AND user_id = ${userId}`).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new GenerationNotFound({ message: "No such generation" })),
            onSome: Effect.succeed
          }))
        )
        : Effect.fail(new GenerationNotFound({ message: "No such generation" }))

    /**
     * Cancels the caller's pending or running generation; a cancelled generation publishes no outputs,
     * so all it charged is refunded. A pending job is taken off its queue; a running one is stopped by
     * its worker, which watches the status (workers/generations/generationHandler.ts).
     */
    const cancel = Effect.fn("Generations.cancel")(function*(id: string, userId: string) {
      const generation = yield* owned(id, userId)
      const settled = yield* settle(id, ACTIVE, () => ({
        status: "cancelled",
        delivered: 0,
        outputs: [],
        error: { code: "CANCELLED", message: "Cancelled. Your credits were refunded." }
      }))
      if (Option.isNone(settled)) {
        const now = yield* owned(id, userId)
        return yield* new GenerationFinished({ message: `The generation is already ${now.status}`, generationStatus: now.status })
      }
      const app = catalog.get(generation.app)
      if (generation.status === "pending" && app !== undefined) {
        // Best effort: a job left behind (a worker took it, Redis is down) finds it cancelled and does nothing.
        yield* queues.remove(app.job.queue, id).pipe(
          Effect.catchAll((error) => Effect.logWarning("cancelled generation left in its queue", { id, error: error.message }))
        )
      }
      return settled.value
    }, Effect.catchTag("SqlError", unavailable("cancel")))

    const list = Effect.fn("Generations.list")(function*(userId: string, params: ListParams) {
      const byApp = params.app === undefined ? sql`` : sql`AND g.app = ${params.app}`
      const names = catalog.apps.map((a) => a.name.toLowerCase())
      const ids = catalog.apps.map((a) => a.appId)
      const order = params.sort === "oldest"
        ? sql`g.created_at ASC, g.id ASC`
        : params.sort === "name"
        ? sql`COALESCE(n.name, g.app) ASC, g.created_at DESC, g.id DESC`
        : sql`g.created_at DESC, g.id DESC`
      const found = yield* sql<Record<string, unknown>>`
        SELECT g.*, count(*) OVER () AS total
        FROM generations g
        LEFT JOIN unnest(${ids}::text[], ${names}::text[]) AS n (app, name) ON n.app = g.app
        WHERE g.user_id = ${userId} ${byApp}
        ORDER BY ${order}
        LIMIT ${pageSize(params.limit)}`
      const items = yield* Effect.orDie(decodeRows(found))
      const total = found[0] === undefined ? 0 : Number(found[0]["total"])
      return { items, total }
    }, Effect.catchTag("SqlError", unavailable("list")))

    const recent = Effect.fn("Generations.recent")(function*(userId: string, limit: number) {
      return yield* rows(sql`SELECT * FROM generations WHERE user_id = ${userId} ORDER BY created_at DESC, id DESC LIMIT ${pageSize(limit)}`)
    }, Effect.catchTag("SqlError", unavailable("recent")))

    /**
     * Deletes the caller's generation: a running one is cancelled first (and refunded), then its
     * outputs leave storage, then the row goes. A storage failure keeps the row, so a retry finishes.
     */
    const remove = Effect.fn("Generations.remove")(function*(id: string, userId: string) {
      const generation = yield* owned(id, userId)
      if ((ACTIVE as ReadonlyArray<string>).includes(generation.status)) {
        yield* cancel(id, userId).pipe(Effect.catchTag("GenerationFinished", () => Effect.void))
      }
      const current = yield* owned(id, userId)
      yield* Effect.forEach(current.outputs, (output) =>
        storage.delete(output.key).pipe(
          Effect.catchTag("InvalidStorageKey", (error) => Effect.logWarning("generation output with an invalid key", { id, error: error.reason }))
        ), { discard: true })
      yield* sql`DELETE FROM generations WHERE id = ${id} AND user_id = ${userId}`
    }, Effect.catchTags({ SqlError: unavailable("delete"), StorageError: unavailable("delete outputs") }))

    return { create, start, progress, status, complete, fail, cancel, list, recent, remove } as const
  })
}) {}
