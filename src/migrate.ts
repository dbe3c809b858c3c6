import { NodeContext } from "@effect/platform-node"
import { Effect, Either } from "effect"
import pino from "pino"
import { AppConfigLive } from "./layers/platform/AppConfigLive.js"
import { PgLive, runMigrations } from "./layers/platform/DatabaseLive.js"
import { LoggerLive } from "./layers/platform/LoggerLive.js"

/** `npm run migrate`: applies pending migrations under the advisory lock, then exits. */
const program = runMigrations().pipe(
  Effect.tap((applied) => Effect.logInfo("migrate: done", { applied: applied.length })),
  Effect.tapErrorCause((cause) => Effect.logFatal("migrate: failed", cause)),
  Effect.provide(PgLive),
  Effect.provide(NodeContext.layer),
  Effect.provide(LoggerLive),
  Effect.provide(AppConfigLive),
  Effect.either
)

Effect.runPromise(program).then((result) => {
  if (Either.isLeft(result) && result.left._tag === "InvalidConfig") {
    pino().fatal({ problems: result.left.problems }, result.left.message)
  }
  process.exit(Either.isRight(result) ? 0 : 1)
})
