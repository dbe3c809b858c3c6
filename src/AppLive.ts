import { NodeContext } from "@effect/platform-node"
import { Effect, FiberRef, Layer } from "effect"
import { AppConfig } from "./services/platform/AppConfig.js"
import { RateLimitGuard } from "./http/platform/RateLimitGuard.js"
import { Accounts } from "./services/accounts/Accounts.js"
import { Health } from "./services/platform/Health.js"
import { Ledger } from "./services/credits/Ledger.js"
import { AppCatalog, type GenerationApp } from "./services/generations/AppCatalog.js"
import { Generations } from "./services/generations/Generations.js"
import { jobDefinitions, jobHandlers } from "./workers/registry.js"
import type { AnyJobHandler } from "./workers/jobs/runtime.js"
import { makeWorkersLive } from "./workers/jobs/WorkersLive.js"
import { GenerationEventHubLive } from "./layers/generations/GenerationEventHubLive.js"
import { DatabaseLive } from "./layers/platform/DatabaseLive.js"
import { FfmpegLive } from "./layers/platform/FfmpegLive.js"
import { type HttpOptions, makeHttpLive } from "./http/HttpLive.js"
import { makeJobQueuesLive } from "./layers/jobs/JobQueuesLive.js"
import { SessionMirrorRedis } from "./layers/accounts/SessionMirrorRedis.js"
import { SessionRepositoryLive } from "./layers/accounts/SessionRepositoryLive.js"
import { UserRepositoryLive } from "./layers/accounts/UserRepositoryLive.js"
import { RateLimiterRedis } from "./layers/platform/RateLimiterRedis.js"
import { RedisLive } from "./layers/platform/RedisLive.js"
import { StorageLocalLive } from "./layers/platform/StorageLocalLive.js"
import { MetricsPrometheusLive } from "./layers/platform/MetricsPrometheusLive.js"
import { makeTracingLive } from "./layers/platform/TracingLive.js"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Payments } from "./services/payments/Payments.js"
import { Uploads } from "./services/uploads/Uploads.js"
import { VideoMixer } from "./services/videoMixer/VideoMixer.js"
import { videoMixerApp } from "./services/videoMixer/VideoMixerApp.js"
import { LoopingFlow } from "./services/loopingFlow/LoopingFlow.js"
import { loopingFlowApp } from "./services/loopingFlow/LoopingFlowApp.js"
import { DuitkuClientLive } from "./layers/payments/DuitkuClientLive.js"
import { HuggingFaceImageGeneratorLive } from "./layers/images/HuggingFaceImageGenerator.js"
import { AvatarCreator } from "./services/avatarCreator/AvatarCreator.js"
import { avatarCreatorApp } from "./services/avatarCreator/AvatarCreatorApp.js"

/**
 * Infrastructure in a line, so it is acquired in this order and released in the reverse:
 * Redis, then Postgres (migrated), then storage and ffmpeg.
 */
export const InfraLive = Layer.mergeAll(StorageLocalLive, FfmpegLive).pipe(
  Layer.provideMerge(DatabaseLive),
  Layer.provideMerge(RedisLive),
  Layer.provideMerge(NodeContext.layer)
)

/** The accounts service over its Postgres repositories. */
const AccountsLive = Accounts.Default.pipe(Layer.provide([UserRepositoryLive, SessionRepositoryLive]))

export interface AppOptions extends HttpOptions {
  /** The job kinds this process knows; the registry's by default (tests bring their own). */
  readonly jobHandlers?: ReadonlyArray<AnyJobHandler>
  /** The apps `GET /api/apps` lists and generations run for; `generationApps` by default (tests bring a fixture app). */
  readonly apps?: ReadonlyArray<GenerationApp>
  /** Where spans go instead of OTEL_EXPORTER_OTLP_ENDPOINT's collector (tests: an in-memory exporter); turns tracing on. */
  readonly spanProcessor?: SpanProcessor
}

/** Every app this deployment offers: each adds itself here (its job handler goes in workers/registry.ts). */
export const generationApps: ReadonlyArray<GenerationApp> = [videoMixerApp, avatarCreatorApp, loopingFlowApp]

/**
 * Everything the process runs for its ROLE: the HTTP API with the probes, and (unless ROLE=api) the
 * job workers, over the job queues and the infrastructure. HTTP and workers drain side by side at
 * shutdown; the queues and then the infrastructure are released after both.
 */
export const makeAppLive = (options: AppOptions = {}) =>
  Layer.unwrapEffect(
    Effect.map(AppConfig, (config) => {
      const handlers = options.jobHandlers ?? jobHandlers
      const workers = config.role === "api" ? Layer.empty : makeWorkersLive(handlers)
      return Layer.mergeAll(makeHttpLive(options), workers).pipe(
        Layer.provide(Layer.mergeAll(Health.Default, RateLimitGuard.Default, AccountsLive)),
        Layer.provideMerge(VideoMixer.Default),
        Layer.provideMerge(AvatarCreator.Default),
        Layer.provideMerge(LoopingFlow.Default),
        Layer.provideMerge(Generations.Default),
        Layer.provideMerge(GenerationEventHubLive),
        Layer.provideMerge(Uploads.Default),
        Layer.provideMerge(AppCatalog.layer(options.apps ?? generationApps)),
        Layer.provideMerge(Payments.Default.pipe(Layer.provide(DuitkuClientLive))),
        Layer.provideMerge(Ledger.Default),
        Layer.provideMerge(HuggingFaceImageGeneratorLive),
        Layer.provideMerge(SessionMirrorRedis),
        Layer.provideMerge(RateLimiterRedis),
        Layer.provideMerge(MetricsPrometheusLive),
        Layer.provideMerge(makeJobQueuesLive(jobDefinitions(handlers))),
        Layer.provideMerge(InfraLive),
        // The tracer under everything, so Postgres, Redis, requests and jobs all record into it.
        Layer.provide(makeTracingLive(options.spanProcessor)),
        // Every fiber the app starts (requests, workers) inherits this from the build: spans are
        // made only while something exports them (services/platform/tracing.ts).
        Layer.locally(FiberRef.currentTracerEnabled, config.telemetry.tracing || options.spanProcessor !== undefined)
      )
    })
  )

export const AppLive = makeAppLive()
