import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import { Effect, FiberRef, Option } from "effect"
import type pg from "pg"
import type { LeanSqlShape } from "../../services/platform/LeanSql.js"

const failed = (message: string) => (cause: unknown) => new SqlError({ cause, message })

/** One query on a pooled client or on the pool (which checks a client out for it), as one Effect.async. */
const query = <A>(on: pg.Pool | pg.PoolClient, text: string, values: ReadonlyArray<unknown>) =>
  Effect.async<ReadonlyArray<A>, SqlError>((resume) => {
    // pg's typing wants a mutable any[] of values; the compiled parameters are passed as they are.
    on.query(text, values as Array<unknown>, (error: Error | undefined, result: pg.QueryResult) => {
      resume(error === undefined || error === null ? Effect.succeed(result.rows as ReadonlyArray<A>) : Effect.fail(failed("Failed to execute statement")(error)))
    })
  })

/** Never sent: a statement yielded the usual way inside a lean transaction dies here instead of running outside it. */
const outside: Statement.Statement.Transformer = (statement) =>
  Effect.dieMessage(`a statement ran outside its lean transaction (send it through LeanSql.run): ${statement.compile()[0].slice(0, 200)}`)

/**
 * LeanSql over the same pg pool as the PgClient (DatabaseLive owns it and ends it after both).
 * Holds no resource of its own: a lean transaction's client goes back to the pool when it ends,
 * and is discarded (released with the error) when its ROLLBACK or COMMIT failed.
 */
export const makeLeanSqlPg = (pool: pg.Pool): LeanSqlShape => {
  const current = FiberRef.unsafeMake<pg.PoolClient | undefined>(undefined)

  const run: LeanSqlShape["run"] = <A extends object>(statement: Statement.Statement<A>) =>
    Effect.flatMap(FiberRef.get(current), (client) => {
      if (client !== undefined) {
        const [text, values] = statement.compile()
        return query<A>(client, text, values)
      }
      return Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (inCaller) => {
        if (Option.isSome(inCaller)) return statement
        const [text, values] = statement.compile()
        return query<A>(pool, text, values)
      })
    })

  const connect = Effect.async<pg.PoolClient, SqlError>((resume) => {
    pool.connect((error, client) => {
      if (error !== undefined && error !== null) resume(Effect.fail(failed("Failed to acquire connection for transaction")(error)))
      else if (client === undefined) resume(Effect.fail(failed("Failed to acquire connection for transaction")(new Error("no client"))))
      else resume(Effect.succeed(client))
    })
  })

  const transaction: LeanSqlShape["transaction"] = (effect) =>
    Effect.flatMap(
      Effect.zip(FiberRef.get(current), Effect.serviceOption(SqlClient.TransactionConnection)),
      ([lean, inCaller]) => {
        if (lean !== undefined || Option.isSome(inCaller)) return effect
        return Effect.uninterruptible(Effect.gen(function*() {
          const client = yield* connect
          // A client that breaks while checked out emits 'error'; unheard, that would end the process.
          let broken: unknown = undefined
          const onError = (error: unknown) => {
            broken = error
          }
          client.on("error", onError)
          // How far it got: a failure before BEGIN answered, or in COMMIT, leaves the connection in an
          // unknown state (the pool drops it); a failure of the work is rolled back.
          const at: { stage: "begin" | "open" | "commit" | "done" } = { stage: "begin" }
          const exit = yield* Effect.exit(Effect.gen(function*() {
            yield* query(client, "BEGIN", [])
            at.stage = "open"
            const value = yield* Statement.withTransformer(Effect.locally(effect, current, client), outside)
            at.stage = "commit"
            yield* query(client, "COMMIT", [])
            at.stage = "done"
            return value
          }))
          let drop = broken !== undefined || at.stage === "begin" || at.stage === "commit"
          if (at.stage === "open" && !drop) {
            const rolledBack = yield* Effect.exit(query(client, "ROLLBACK", []))
            drop = rolledBack._tag === "Failure" || broken !== undefined
          }
          client.off("error", onError)
          client.release(drop ? (broken instanceof Error ? broken : new Error("the transaction's connection is discarded")) : undefined)
          return yield* exit
        }))
      }
    )

  return { run, transaction, inTransaction: Effect.map(FiberRef.get(current), (client) => client !== undefined) }
}
