import type { SqlError } from "@effect/sql/SqlError"
import type { Statement } from "@effect/sql/Statement"
import { Context, type Effect } from "effect"

/**
 * Runs statements built with @effect/sql's `sql` template on the hot paths (a generate, the balance)
 * at a fraction of the per-statement cost: @effect/sql wraps every execution in a span, a scope, a
 * statement transformer lookup and a connection acquirer (about 40 us of CPU per statement on this
 * machine, against one Effect.async around the driver's query; see the README's Performance section).
 * The statements are the same objects, compiled by the same compiler; what changes is who sends them.
 */
export interface LeanSqlShape {
  /**
   * Runs one statement: on the lean transaction's connection inside `transaction`, in the caller's
   * @effect/sql transaction inside `sql.withTransaction` (as `yield* statement` would), else on a
   * pooled connection. An interrupted run lets the statement finish on its own (statement_timeout
   * bounds it); only the answer is dropped.
   */
  readonly run: <A extends object>(statement: Statement<A>) => Effect.Effect<ReadonlyArray<A>, SqlError>
  /**
   * Runs `effect` as one transaction (BEGIN, COMMIT; ROLLBACK on failure or defect) on a connection
   * held for it, with its statements sent through `run`. Uninterruptible: it is short, and a money
   * path is never left half-done by a client that went away. Inside another transaction (this kind or
   * @effect/sql's) it joins it, with no savepoint. A statement yielded the usual way inside it would
   * run on another connection, outside the transaction: that is a defect, and it dies saying so.
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
  /** Whether the current fiber is inside a lean transaction. */
  readonly inTransaction: Effect.Effect<boolean>
}

export class LeanSql extends Context.Tag("app/LeanSql")<LeanSql, LeanSqlShape>() {}
