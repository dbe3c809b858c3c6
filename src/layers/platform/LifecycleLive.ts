import { Deferred, Duration, Effect, Layer, Runtime } from "effect"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { Lifecycle, type LifecyclePhase, type ShutdownReason } from "../../services/platform/Lifecycle.js"
import { PinoHandle } from "./LoggerLive.js"

const DUPLICATE_WINDOW_MS = 250
const FORCED_FLUSH_LIMIT_MS = 250

export interface LifecycleOptions {
  /** Install SIGTERM/SIGINT and crash handlers on this process (off in in-process tests). */
  readonly processHandlers: boolean
  /** How the process ends when the shutdown cap or a second signal forces it. */
  readonly exit?: (code: number) => void
}

/**
 * The process lifecycle: phase, shutdown trigger and shutdown stages. With `processHandlers` it
 * owns the process' SIGTERM/SIGINT, uncaughtException and unhandledRejection listeners and the
 * shutdown cap timer; they are removed when the layer is released, which is after every other
 * app layer, so a second signal during shutdown still exits at once.
 */
export const makeLifecycleLive = (options: LifecycleOptions) =>
  Layer.scoped(
    Lifecycle,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const pinoHandle = yield* PinoHandle
      const runtime = yield* Effect.runtime<never>()
      const runSync = Runtime.runSync(runtime)
      const exit = options.exit ?? ((code: number) => process.exit(code))
      const shutdown = yield* Deferred.make<ShutdownReason>()
      let phase: LifecyclePhase = "starting"
      let exitCode = 0
      let capTimer: NodeJS.Timeout | undefined
      let deadline: number | undefined
      const stages = new Set<string>()

      let exiting = false
      const forceExit = (message: string, fields: Record<string, unknown>) => {
        pinoHandle.log.fatal(pinoHandle.redactor.value(fields) as object, message)
        if (exiting) return
        exiting = true
        // The log flush gets a moment, not a say: a stdout nobody reads must not hold the exit.
        void pinoHandle.flush(FORCED_FLUSH_LIMIT_MS).then(() => exit(1))
      }

      const begin = (reason: ShutdownReason) => {
        if (reason._tag === "Crash") exitCode = 1
        if (phase === "draining") return
        phase = "draining"
        const cap = Duration.toMillis(config.shutdown.timeout)
        deadline = Date.now() + cap
        capTimer = setTimeout(() => {
          forceExit("shutdown.forced: the shutdown timeout passed with stages still running", {
            stages: [...stages],
            timeoutMs: cap
          })
        }, cap)
        capTimer.unref()
        runSync(
          Effect.logInfo("shutdown.start", {
            reason: reason._tag === "Signal" ? reason.signal : reason._tag === "Crash" ? "crash" : reason.why,
            drainDelayMs: Duration.toMillis(config.shutdown.drainDelay),
            timeoutMs: cap
          })
        )
        runSync(Deferred.succeed(shutdown, reason))
      }

      if (options.processHandlers) {
        let firstSignal: { readonly signal: NodeJS.Signals; readonly at: number } | undefined
        const onSignal = (signal: NodeJS.Signals) => {
          // One operator action often arrives twice: a supervisor (npm, tsx, timeout) relays the
          // signal it also delivered to the whole process group. Only a later signal is a second one.
          if (firstSignal !== undefined && firstSignal.signal === signal && Date.now() - firstSignal.at < DUPLICATE_WINDOW_MS) {
            return
          }
          firstSignal ??= { signal, at: Date.now() }
          if (phase === "draining") {
            forceExit("shutdown.aborted: second signal, exiting now", { signal, stages: [...stages] })
            return
          }
          begin({ _tag: "Signal", signal })
        }
        let crashing = false
        const onCrash = (kind: string) => (error: unknown) => {
          pinoHandle.log.fatal({ err: pinoHandle.redactor.value(error), kind }, `${kind}: ${
            pinoHandle.redactor.text(error instanceof Error ? error.message : String(error))
          }`)
          if (crashing) return
          crashing = true
          begin({ _tag: "Crash", error })
        }
        const onUncaught = onCrash("uncaughtException")
        const onRejection = onCrash("unhandledRejection")
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            process.on("SIGTERM", onSignal)
            process.on("SIGINT", onSignal)
            process.on("uncaughtException", onUncaught)
            process.on("unhandledRejection", onRejection)
          }),
          () =>
            Effect.sync(() => {
              process.off("SIGTERM", onSignal)
              process.off("SIGINT", onSignal)
              process.off("uncaughtException", onUncaught)
              process.off("unhandledRejection", onRejection)
            })
        )
      }
      yield* Effect.addFinalizer(() => Effect.sync(() => capTimer !== undefined && clearTimeout(capTimer)))

      return Lifecycle.of({
        phase: () => phase,
        markRunning: Effect.sync(() => {
          if (phase === "starting") phase = "running"
        }),
        requestShutdown: (reason) => Effect.sync(() => begin(reason)),
        awaitShutdown: Deferred.await(shutdown),
        stage: (name, effect) =>
          Effect.suspend(() => {
            const start = performance.now()
            stages.add(name)
            return Effect.logInfo(`shutdown.stage ${name} started`).pipe(
              Effect.zipRight(effect),
              Effect.ensuring(Effect.suspend(() => {
                stages.delete(name)
                return Effect.logInfo(`shutdown.stage ${name} finished`, {
                  stage: name,
                  durationMs: Math.round(performance.now() - start)
                })
              }))
            )
          }),
        activeStages: () => [...stages],
        deadline: () => deadline,
        exitCode: () => exitCode
      })
    })
  )
