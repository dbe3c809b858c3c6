import { type Cause, Context, Duration, Effect } from "effect"

export type ShutdownReason =
  | { readonly _tag: "Signal"; readonly signal: string }
  | { readonly _tag: "Crash"; readonly error: unknown }
  | { readonly _tag: "Requested"; readonly why: string }

export type LifecyclePhase = "starting" | "running" | "draining"

export interface LifecycleShape {
  /** Synchronous so the hot path (readiness, Connection: close) reads a field, not an Effect. */
  readonly phase: () => LifecyclePhase
  readonly markRunning: Effect.Effect<void>
  /** Starts the graceful shutdown (idempotent); readiness turns 503 at once. */
  readonly requestShutdown: (reason: ShutdownReason) => Effect.Effect<void>
  /** Completes when shutdown has been requested. */
  readonly awaitShutdown: Effect.Effect<ShutdownReason>
  /**
   * Runs one named shutdown stage: logs its start, its end and its duration, and tracks it so the
   * shutdown cap can say which stage was still running.
   */
  readonly stage: <A, E, R>(name: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly activeStages: () => ReadonlyArray<string>
  /** When the shutdown cap fires (epoch ms), once shutdown has begun. */
  readonly deadline: () => number | undefined
  /** 0 after a clean shutdown; 1 when it was caused by a crash. */
  readonly exitCode: () => number
}

export class Lifecycle extends Context.Tag("app/Lifecycle")<Lifecycle, LifecycleShape>() {}

/**
 * Wraps a layer's release so it shows as a shutdown stage (name, duration, and in the cap's report)
 * when a Lifecycle is present, and simply runs it otherwise (layers used on their own in tests).
 */
export const releaseStage = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.serviceOption(Lifecycle), (lifecycle) =>
    lifecycle._tag === "Some" ? lifecycle.value.stage(name, effect) : effect)

/**
 * Kept free at the end of the shutdown cap for what runs after the layers: the logger's flush (at
 * most 250 ms, then 200 ms more in the process' exit event) and the exit.
 */
const CAP_RESERVE_MS = 500

/**
 * The time a release step may take: its own `limit`, or less when the shutdown cap comes sooner
 * (so each later stage still gets its turn and the process ends before the cap forces it).
 */
export const releaseBudget = (limit: Duration.DurationInput): Effect.Effect<Duration.Duration> =>
  Effect.map(Effect.serviceOption(Lifecycle), (lifecycle) => {
    const own = Duration.decode(limit)
    const deadline = lifecycle._tag === "Some" ? lifecycle.value.deadline() : undefined
    if (deadline === undefined) return own
    return Duration.min(own, Duration.millis(Math.max(0, deadline - Date.now() - CAP_RESERVE_MS)))
  })

/**
 * Waits for a promise for at most `limit` (see releaseBudget), also inside release code.
 * Finalizers are uninterruptible, so there `Effect.timeout` only fires once the promise has settled
 * (a 300 ms bound returned after 3 s); this wait is made interruptible, so the bound is real. The
 * promise is abandoned, not cancelled: the caller follows a timeout with a real kill (disconnect,
 * SIGKILL). Fails with the promise's rejection or a TimeoutException.
 */
export const awaitWithin = <A>(
  evaluate: () => PromiseLike<A>,
  limit: Duration.DurationInput
): Effect.Effect<A, Cause.UnknownException | Cause.TimeoutException> =>
  Effect.flatMap(releaseBudget(limit), (budget) =>
    Effect.interruptible(Effect.tryPromise(() => Promise.resolve(evaluate()))).pipe(Effect.timeout(budget)))
