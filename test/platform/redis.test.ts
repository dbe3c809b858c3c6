import { Effect, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { reconnectDelay, RedisLive } from "../../src/layers/platform/RedisLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { Redis, type RedisShape } from "../../src/services/platform/Redis.js"
import { PrivateRedis } from "../support/redisServer.js"
import { TcpProxy } from "../support/tcpProxy.js"
import { waitUntil } from "../support/inProcessApp.js"

const build = async (env: Record<string, string>) => {
  const scope = Effect.runSync(Scope.make())
  const layer = RedisLive.pipe(
    Layer.provide(Layer.effect(AppConfig, appConfigFrom({ LOG_LEVEL: "silent", ...env }))),
    Layer.provide(Logger.minimumLogLevel(LogLevel.None))
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const redis = Effect.runSync(Effect.provide(Redis, context)) as RedisShape
  return { redis, scope, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

describe("Redis service", () => {
  const cleanups: Array<() => Promise<void>> = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it("reconnect delays grow, stay capped, are jittered, and never give up", () => {
    expect(reconnectDelay(1, () => 1)).toBe(200)
    expect(reconnectDelay(5, () => 1)).toBe(3200)
    expect(reconnectDelay(1000, () => 1)).toBe(10_000)
    expect(reconnectDelay(1000, () => 0)).toBe(100)
    const samples = new Set(Array.from({ length: 50 }, () => reconnectDelay(8)))
    expect(samples.size).toBeGreaterThan(10)
    expect([...samples].every((d) => d >= 100 && d <= 10_000)).toBe(true)
  })

  it("fails request-path commands at once while Redis is down, and recovers by itself after many attempts", async () => {
    const server = await PrivateRedis.start()
    cleanups.push(() => server.stop())
    const { close, redis } = await build({ REDIS_PORT: String(server.port) })
    cleanups.push(close)
    await waitUntil(async () => (await Effect.runPromise(Effect.either(redis.ping)))._tag === "Right", 3_000)
    await server.stop()
    await new Promise((r) => setTimeout(r, 200))
    for (let i = 0; i < 5; i++) {
      const start = performance.now()
      const result = await Effect.runPromise(Effect.either(redis.use("get", (c) => c.get("k"))))
      expect(result._tag).toBe("Left")
      expect(performance.now() - start).toBeLessThan(100)
    }
    // Stay down long enough for the old 3-attempt limit to have given up for good.
    await new Promise((r) => setTimeout(r, 2_500))
    await server.start()
    const took = await waitUntil(async () => (await Effect.runPromise(Effect.either(redis.ping)))._tag === "Right", 12_000)
    expect(took).toBeLessThan(12_000)
  }, 30_000)

  it("keys are prefixed per run, and BullMQ connections are separate and unprefixed", async () => {
    const { close, redis } = await build({ REDIS_KEY_PREFIX: "lumiku_test:prefix-check:" })
    cleanups.push(close)
    await Effect.runPromise(redis.use("set", (c) => c.set("probe", "1", "EX", 10)))
    const bull = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const conn = yield* redis.bullConnection("test")
      const options = conn.options
      const raw = yield* Effect.promise(() => conn.get("lumiku_test:prefix-check:probe"))
      return { maxRetries: options.maxRetriesPerRequest, prefix: options.keyPrefix, raw, same: conn === redis.client }
    })))
    expect(bull).toEqual({ maxRetries: null, prefix: "", raw: "1", same: false })
  })

  it("release sends QUIT, and disconnects when QUIT hangs", async () => {
    const server = await PrivateRedis.start()
    cleanups.push(() => server.stop())
    const quick = await build({ REDIS_PORT: String(server.port) })
    const clients = async () => String(await Effect.runPromise(quick.redis.use("client", (c) => c.client("LIST")))).split("\n").filter((l: string) => l.includes("lumiku:request")).length
    const other = await build({ REDIS_PORT: String(server.port) })
    expect(await clients()).toBe(2)
    const start = performance.now()
    await other.close()
    expect(performance.now() - start).toBeLessThan(500)
    expect(await clients()).toBe(1)
    await quick.close()
    // Through a proxy that stops forwarding: QUIT never gets its answer.
    const proxy = await TcpProxy.start(server.port)
    cleanups.push(() => proxy.close())
    const hung = await build({ REDIS_PORT: String(proxy.port) })
    proxy.setMode("hang")
    const hungStart = performance.now()
    await hung.close()
    const elapsed = performance.now() - hungStart
    // QUIT is given up at the command timeout (1 s here) or the 2 s release cap, whichever is first.
    expect(elapsed).toBeGreaterThanOrEqual(900)
    expect(elapsed).toBeLessThan(2_500)
    // ...and the socket whose peer never acknowledges the close is destroyed soon after.
    await waitUntil(async () => hung.redis.client.status === "end", 1_500)
  })

  it("a worker connection (no command timeout) to a hung Redis is closed within its 2 s limit", async () => {
    const server = await PrivateRedis.start()
    cleanups.push(() => server.stop())
    const proxy = await TcpProxy.start(server.port)
    cleanups.push(() => proxy.close())
    const app = await build({ REDIS_PORT: String(proxy.port) })
    cleanups.push(app.close)
    const scope = Effect.runSync(Scope.make())
    const connection = await Effect.runPromise(Scope.extend(app.redis.bullConnection("worker:hung"), scope))
    await waitUntil(async () => connection.status === "ready", 3_000)
    proxy.setMode("hang")
    const start = performance.now()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    const elapsed = performance.now() - start
    // QUIT never gets an answer and this connection has no command timeout: only the release bound ends it.
    expect(elapsed).toBeGreaterThanOrEqual(1_800)
    expect(elapsed).toBeLessThan(2_800)
    await waitUntil(async () => connection.status === "end", 1_500)
  }, 20_000)
})
