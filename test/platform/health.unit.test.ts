import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Ref, TestClock } from "effect"
import { inject } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { PgLive } from "../../src/layers/platform/DatabaseLive.js"
import { makeLifecycleLive } from "../../src/layers/platform/LifecycleLive.js"
import { makeLoggerLive } from "../../src/layers/platform/LoggerLive.js"
import { StorageMemory } from "../../src/layers/platform/StorageMemory.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { Ffmpeg } from "../../src/services/platform/Ffmpeg.js"
import { Health } from "../../src/services/platform/Health.js"
import { Lifecycle } from "../../src/services/platform/Lifecycle.js"
import { Redis, RedisError } from "../../src/services/platform/Redis.js"
import { PassThrough } from "node:stream"

// The layer design at work: Health runs against the real Postgres, while Redis, storage and
// ffmpeg are swapped for test doubles (an in-memory Storage, a Redis whose health a test flips).
const redisUp = Effect.runSync(Ref.make(true))

const RedisSwitch = Layer.succeed(Redis, Redis.of({
  client: undefined as never, // never touched by Health
  keyPrefix: "test:",
  use: () => Effect.die("not used"),
  ping: Effect.flatMap(Ref.get(redisUp), (up) => (up ? Effect.succeed(1) : Effect.fail(new RedisError({ op: "ping", cause: "down" })))),
  bullConnection: () => Effect.die("not used")
}))

const FfmpegStub = Layer.succeed(Ffmpeg, Ffmpeg.of({
  info: {
    ffmpegPath: "/bin/sh",
    ffprobePath: "/bin/sh",
    ffmpegVersion: "test",
    ffprobeVersion: "test",
    ffmpegSource: "configured",
    ffprobeSource: "configured",
    missing: []
  },
  probe: () => Effect.die("not used"),
  run: () => Effect.die("not used"),
  require: () => Effect.die("not used"),
  tempDir: Effect.die("not used")
}))

const ConfigTest = Layer.effect(AppConfig, appConfigFrom({
  NODE_ENV: "test",
  DATABASE_URL: inject("databaseUrl"),
  READINESS_CACHE_TTL: "5 seconds"
}))

const HealthTest = Health.Default.pipe(
  Layer.provideMerge(makeLifecycleLive({ processHandlers: false })),
  Layer.provide(Layer.mergeAll(RedisSwitch, FfmpegStub, StorageMemory, PgLive)),
  Layer.provideMerge(makeLoggerLive({ destination: new PassThrough() })),
  Layer.provideMerge(ConfigTest)
)

layer(HealthTest)("Health with swapped layers", (it) => {
  it.effect("readiness is cached for its TTL, measured on the TestClock", () =>
    Effect.gen(function*() {
      const health = yield* Health
      expect((yield* health.readiness()).ready).toBe(true)
      yield* Ref.set(redisUp, false)
      // Still inside the TTL: the cached answer stands.
      yield* TestClock.adjust(Duration.seconds(4))
      expect((yield* health.readiness()).ready).toBe(true)
      yield* TestClock.adjust(Duration.seconds(2))
      const report = yield* health.readiness()
      expect(report).toMatchObject({ ready: false, reason: "dependency_down", checks: { redis: { status: "down" }, database: { status: "up" } } })
      yield* Ref.set(redisUp, true)
    }))

  it.effect("the detailed report marks a failing dependency and is unhealthy", () =>
    Effect.gen(function*() {
      const health = yield* Health
      yield* Ref.set(redisUp, false)
      const report = yield* health.detailed()
      yield* Ref.set(redisUp, true)
      expect(report.healthy).toBe(false)
      expect(report.body).toMatchObject({ status: "unhealthy", checks: { redis: { status: "down" }, storage: { status: "up" }, database: { status: "up" } } })
      const healthy = yield* health.detailed()
      expect(healthy.healthy).toBe(true)
    }))

  it.effect("readiness turns not ready the moment shutdown begins, whatever the cache says", () =>
    Effect.gen(function*() {
      const health = yield* Health
      const lifecycle = yield* Lifecycle
      yield* lifecycle.requestShutdown({ _tag: "Requested", why: "test" })
      expect(yield* health.readiness()).toMatchObject({ ready: false, reason: "shutting_down" })
    }))
})
