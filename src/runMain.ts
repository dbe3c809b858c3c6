import { HttpServer } from "@effect/platform"
import { Context, Effect, Either, Exit, Layer } from "effect"
import pino from "pino"
import { loadAppConfig } from "./layers/platform/AppConfigLive.js"
import { makeLifecycleLive } from "./layers/platform/LifecycleLive.js"
import { LoggerLive } from "./layers/platform/LoggerLive.js"
import { AppConfig, type AppConfigShape } from "./services/platform/AppConfig.js"
import { Lifecycle } from "./services/platform/Lifecycle.js"

/**
 * Runs the app until shutdown is requested, then releases it. Layers are released in reverse
 * build order: HTTP drain, server, Postgres, Redis, then the lifecycle hooks, then the logger
 * (which flushes last).
 */
const program = <E>(app: Layer.Layer<HttpServer.HttpServer, E, AppConfig | Lifecycle>) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const lifecycle = yield* Lifecycle
    if (config.auth.jwtSecretGenerated) {
      yield* Effect.logWarning("JWT_SECRET is not set: generated one for this process; its tokens die with it")
    }
    yield* Effect.scoped(
      Effect.gen(function*() {
        const context = yield* Layer.build(app)
        const address = Context.get(context, HttpServer.HttpServer).address
        yield* lifecycle.markRunning
        yield* Effect.logInfo("lumiku-backend listening", {
          port: address._tag === "TcpAddress" ? address.port : address.path,
          role: config.role,
          version: config.version,
          env: config.env
        })
        yield* lifecycle.awaitShutdown
      })
    )
    yield* Effect.logInfo("shutdown.complete", { exitCode: lifecycle.exitCode() })
    return lifecycle.exitCode()
  }).pipe(
    Effect.tapErrorCause((cause) => Effect.logFatal("startup failed", cause)),
    Effect.provide(makeLifecycleLive({ processHandlers: true })),
    Effect.provide(LoggerLive)
  )

const start = <E>(app: Layer.Layer<HttpServer.HttpServer, E, AppConfig | Lifecycle>, config: AppConfigShape) => {
  const fiber = Effect.runFork(program(app).pipe(Effect.provideService(AppConfig, config)))
  fiber.addObserver((exit) => process.exit(Exit.isSuccess(exit) ? exit.value : 1))
}

/**
 * The process entry: validate the configuration (exit 1 with every problem listed, before
 * anything listens), then run `app` until a signal or a crash, and exit 0 or 1.
 */
export const runMain = <E>(app: Layer.Layer<HttpServer.HttpServer, E, AppConfig | Lifecycle>) =>
  Effect.runPromise(Effect.either(loadAppConfig)).then((result) => {
    if (Either.isRight(result)) return start(app, result.right)
    // No config, so no configured logger: one plain JSON line. Problems never carry secret values.
    const log = pino({ base: { service: "lumiku-backend" }, timestamp: pino.stdTimeFunctions.isoTime })
    log.fatal({ problems: result.left.problems }, result.left.message)
    process.exit(1)
  })
