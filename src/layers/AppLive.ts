import { NodeContext } from "@effect/platform-node"
import { Layer } from "effect"
import { Health } from "../services/Health.js"
import { DatabaseLive } from "./DatabaseLive.js"
import { FfmpegLive } from "./FfmpegLive.js"
import { type HttpOptions, makeHttpLive } from "./HttpLive.js"
import { RateLimiterRedis } from "./RateLimiterRedis.js"
import { RedisLive } from "./RedisLive.js"
import { StorageLocalLive } from "./StorageLocalLive.js"

/**
 * Infrastructure in a line, so it is acquired in this order and released in the reverse:
 * Redis, then Postgres (migrated), then storage and ffmpeg.
 */
export const InfraLive = Layer.mergeAll(StorageLocalLive, FfmpegLive).pipe(
  Layer.provideMerge(DatabaseLive),
  Layer.provideMerge(RedisLive),
  Layer.provideMerge(NodeContext.layer)
)

/** Everything the process runs: the HTTP API (with the probes) over the infrastructure. */
export const makeAppLive = (options: HttpOptions = {}) =>
  makeHttpLive(options).pipe(
    Layer.provide(Health.Default),
    Layer.provide(RateLimiterRedis),
    Layer.provideMerge(InfraLive)
  )

export const AppLive = makeAppLive()
