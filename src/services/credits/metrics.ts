import { Cause, Effect, Exit, Metric } from "effect"

/** Tagged with `operation` (debit, credit, refund) and `outcome` (ok, or the failure's tag: InsufficientCredits, ...). */
export const ledgerOperations = Metric.counter("ledger_operations", {
  description: "ledger operations as the ledger answered them (a replayed key counts as ok), by operation and outcome",
  incremental: true
})

const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "Some") {
    const error = failure.value
    return typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string" ? error._tag : "error"
  }
  return Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect"
}

/** Counts one ledger operation when it ends. */
export const countedAs = (operation: "debit" | "credit" | "refund") => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.onExit(self, (exit) => Metric.increment(Metric.tagged(Metric.tagged(ledgerOperations, "operation", operation), "outcome", outcomeOf(exit))))
