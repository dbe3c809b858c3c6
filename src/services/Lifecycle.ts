import { Context, Effect } from "effect"

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
