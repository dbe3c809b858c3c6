import { Duration, Effect, FiberRef, Layer, Option, Redacted, Runtime } from "effect"
import { Redis as IORedis, type RedisOptions } from "ioredis"
import { AppConfig, type AppConfigShape } from "../../services/platform/AppConfig.js"
import { errorCodeOf } from "../../services/platform/errorCode.js"
import { awaitWithin, releaseStage } from "../../services/platform/Lifecycle.js"
import { Redis, RedisError } from "../../services/platform/Redis.js"

const RECONNECT_BASE_MS = 100
const RECONNECT_CAP_MS = 10_000
const QUIT_LIMIT = Duration.seconds(2)

/** Capped exponential backoff with full jitter; never returns null, so ioredis never gives up. */
export const reconnectDelay = (attempt: number, random: () => number = Math.random): number => {
  const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 20))
  return Math.max(RECONNECT_BASE_MS, Math.round(ceiling * random()))
}

const baseOptions = (config: AppConfigShape["redis"]): RedisOptions => ({
  host: config.host,
  port: config.port,
  db: config.db,
  ...Option.match(config.username, { onNone: () => ({}), onSome: (username) => ({ username }) }),
  ...Option.match(config.password, { onNone: () => ({}), onSome: (p) => ({ password: Redacted.value(p) }) }),
  keepAlive: 30_000,
  connectTimeout: 10_000,
  // After a disconnect, a socket whose peer never closes it is destroyed after this long.
  disconnectTimeout: 1_000,
  retryStrategy: (attempt) => reconnectDelay(attempt)
})

/**
 * Opens a connection and owns it: on release it sends QUIT, and disconnects outright if QUIT has
 * not finished within 2 s (less when the shutdown cap is nearer), or fails because the server is
 * gone. The wait is a real bound: a hung Redis that never answers QUIT does not hold it. Connection state changes are
 * logged once per change, not once per reconnect attempt.
 */
const acquireConnection = (name: string, options: RedisOptions) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)
    return yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = new IORedis({ ...options, connectionName: `lumiku:${name}` })
        let healthy = true
        client.on("ready", () => {
          if (!healthy) log(Effect.logInfo("redis connection restored").pipe(Effect.annotateLogs("redis", name)))
          healthy = true
        })
        client.on("error", (error: Error) => {
          if (healthy) {
            healthy = false
            log(Effect.logWarning("redis connection error", { code: errorCodeOf(error) ?? error.name })
              .pipe(Effect.annotateLogs("redis", name)))
          }
        })
        return client
      }),
      (client) =>
        releaseStage(
          `redis.close(${name})`,
          // QUIT needs a live server; with none there is nothing to say goodbye to.
          client.status === "ready"
            ? awaitWithin(() => client.quit(), QUIT_LIMIT).pipe(
              Effect.catchAll(() => Effect.sync(() => client.disconnect()))
            )
            : Effect.sync(() => client.disconnect())
        )
    )
  })

/**
 * The Redis service. Owns the request-path connection (released at shutdown, after every layer that
 * uses it) and hands out BullMQ connections owned by their callers' scopes.
 */
export const RedisLive = Layer.scoped(
  Redis,
  Effect.gen(function*() {
    const config = (yield* AppConfig).redis
    const commandTimeout = Duration.toMillis(config.commandTimeout)
    const client = yield* acquireConnection("request", {
      ...baseOptions(config),
      keyPrefix: config.keyPrefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout
    })
    // Give the first connection a moment so the first requests do not fail; a Redis that is down
    // at startup is not fatal (readiness reports it, and the client keeps reconnecting).
    yield* Effect.async<void>((resume) => {
      if (client.status === "ready") return resume(Effect.void)
      const onReady = () => resume(Effect.void)
      client.once("ready", onReady)
      return Effect.sync(() => client.off("ready", onReady))
    }).pipe(
      Effect.timeout(Duration.seconds(3)),
      Effect.catchAll(() => Effect.logWarning("redis is not reachable yet; continuing, it keeps reconnecting"))
    )
    // A client span per call only while spans are made (an exporter is configured): the flag is
    // read once, so the request path pays nothing when tracing is off.
    const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)
    const untracedUse = <A>(op: string, f: (c: IORedis) => Promise<A>) =>
      Effect.tryPromise({ try: () => f(client), catch: (cause) => new RedisError({ op, cause }) })
    const use: typeof untracedUse = tracing
      ? (op, f) => Effect.withSpan(untracedUse(op, f), `redis ${op}`, { kind: "client", attributes: { "db.system": "redis", "db.operation.name": op } })
      : untracedUse
    const ping = Effect.suspend(() => {
      const start = performance.now()
      return use("ping", (c) => c.ping()).pipe(Effect.map(() => performance.now() - start))
    })
    const bullConnection = (name: string, options?: { readonly producer?: boolean }) =>
      acquireConnection(
        `bull:${name}`,
        options?.producer === true
          ? { ...baseOptions(config), enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout }
          : { ...baseOptions(config), maxRetriesPerRequest: null, enableReadyCheck: false }
      )
    return Redis.of({ client, keyPrefix: config.keyPrefix, use, ping, bullConnection })
  })
)
