import { PassThrough } from "node:stream"
import { HttpServer } from "@effect/platform"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { type AppOptions, makeAppLive } from "../../src/AppLive.js"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { makeLifecycleLive } from "../../src/layers/platform/LifecycleLive.js"
import { makeLoggerLive } from "../../src/layers/platform/LoggerLive.js"
import { AppConfig, type AppConfigShape } from "../../src/services/platform/AppConfig.js"
import { Lifecycle, type LifecycleShape } from "../../src/services/platform/Lifecycle.js"

/** Everything the in-process app's layer provides (JobQueues, Redis, AppConfig, ...). */
export type InProcessServices = Layer.Layer.Success<ReturnType<typeof inProcessLayer>>

export interface InProcessApp {
  readonly url: (path: string) => string
  /** The built app's services, for a test to drive them directly (`Effect.provide(app.context)`). */
  readonly context: Context.Context<InProcessServices>
  readonly lifecycle: LifecycleShape
  readonly logLines: () => ReadonlyArray<string>
  readonly close: () => Promise<void>
}

const inProcessLayer = (config: AppConfigShape, destination: PassThrough, options: AppOptions) =>
  makeAppLive({ ...options, listen: { port: 0, host: "127.0.0.1" } }).pipe(
    Layer.provideMerge(makeLifecycleLive({ processHandlers: false })),
    Layer.provideMerge(makeLoggerLive({ destination })),
    Layer.provideMerge(Layer.succeed(AppConfig, config))
  )

/** The real app layer built inside the test process (no signal handlers), on a random port. */
export const startApp = async (env: Record<string, string>, options: AppOptions = {}): Promise<InProcessApp> => {
  const config = await Effect.runPromise(appConfigFrom(env))
  const lines: Array<string> = []
  const destination = new PassThrough()
  destination.on("data", (chunk: Buffer) => lines.push(...chunk.toString("utf8").split("\n").filter((l) => l !== "")))
  const layer = inProcessLayer(config, destination, options)
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  const lifecycle = Context.get(context, Lifecycle)
  Effect.runSync(lifecycle.markRunning)
  return {
    url: (path) => `http://127.0.0.1:${address.port}${path}`,
    context,
    lifecycle,
    logLines: () => lines,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** Polls `probe` every 100 ms until it returns true; resolves with the elapsed ms, or throws at `withinMs`. */
export const waitUntil = async (probe: () => Promise<boolean>, withinMs: number): Promise<number> => {
  const start = Date.now()
  for (;;) {
    if (await probe().catch(() => false)) return Date.now() - start
    if (Date.now() - start > withinMs) throw new Error(`condition not met within ${withinMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The access-log lines (msg "request") the app wrote for one request id, parsed. */
export const accessLines = (app: InProcessApp, requestId: string): Array<Record<string, unknown>> =>
  app.logLines().map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l["requestId"] === requestId && l["msg"] === "request")

/** The one access-log line of a request id; throws when there is none or more than one. */
export const accessLine = (app: InProcessApp, requestId: string): Record<string, unknown> => {
  const found = accessLines(app, requestId)
  if (found.length !== 1) throw new Error(`expected one access line for ${requestId}, found ${found.length}`)
  return found[0]!
}
