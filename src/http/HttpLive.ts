import { FileSystem, HttpApiBuilder, HttpApiSwagger, HttpIncomingMessage, HttpMiddleware } from "@effect/platform"
import { Effect, FiberRef, Layer, Option } from "effect"
import { AccountsHttpLive } from "./accounts/index.js"
import { Api } from "./Api.js"
import { CreditsHttpLive, creditsLeanRoutes } from "./credits/index.js"
import { GenerationsHttpLive } from "./generations/index.js"
import { GenerationEventsSocketLive } from "./generations/GenerationEventsSocket.js"
import { JobsHttpLive } from "./jobs/index.js"
import { PaymentsHttpLive } from "./payments/index.js"
import { PlatformHttpLive } from "./platform/index.js"
import { UploadsHttpLive } from "./uploads/index.js"
import { VideoMixerHttpLive, videoMixerLeanRoutes } from "./videoMixer/index.js"
import { AvatarCreatorHttpLive } from "./avatarCreator/index.js"
import { LoopingFlowHttpLive } from "./loopingFlow/index.js"
import { makeJsonRoutes } from "./platform/jsonRoutes.js"
import { bodyLimitFor } from "./platform/bodyLimit.js"
import { cors } from "./platform/middleware/cors.js"
import { crossSite } from "./platform/middleware/crossSite.js"
import { errorEnvelope } from "./platform/middleware/errorEnvelope.js"
import { makeRequestLog } from "./platform/middleware/requestLog.js"
import { makeRouteTemplates } from "./platform/routeTemplates.js"
import { makeMetricsServerLive, MetricsRouteLive } from "./platform/metricsRoute.js"
import { AppConfig } from "../services/platform/AppConfig.js"
import type { AppServices } from "../services/jobs/JobDefinition.js"
import { HttpDrainLive, makeHttpServerLive } from "./platform/HttpServerLive.js"
import { LeanRoutes } from "./platform/leanRoutes.js"

/** Every route group's handlers, each wired with its own middleware (one line per feature; the contract is in Api.ts). */
const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(Layer.mergeAll(
    PlatformHttpLive,
    AccountsHttpLive,
    CreditsHttpLive,
    GenerationsHttpLive,
    JobsHttpLive,
    PaymentsHttpLive,
    UploadsHttpLive,
    VideoMixerHttpLive,
    AvatarCreatorHttpLive,
    LoopingFlowHttpLive
  ))
)

/** The hot routes the Node server answers ahead of the router (each also declared in the HttpApi; see platform/leanRoutes.ts). */
const LeanRoutesLive = Layer.effect(LeanRoutes, Effect.all([...creditsLeanRoutes, ...videoMixerLeanRoutes]))

/** Routes outside the HttpApi contract, added to the same router (tests use this); they may use the app's services. */
export type ExtraRoutes = Layer.Layer<never, never, HttpApiBuilder.Router | AppServices>

export interface HttpOptions {
  readonly listen?: { readonly port: number; readonly host?: string }
  readonly extraRoutes?: ExtraRoutes
  /** Answer the lean routes ahead of the router (default); off, every request takes the usual path (tests compare the two). */
  readonly leanRoutes?: boolean
}

const jsonRoutes = makeJsonRoutes(Api)

/** Route templates of the metrics' labels: the contract's, and the routes served beside it. */
const routeTemplates = makeRouteTemplates(Api, [
  ["GET", "/docs"],
  ["GET", "/docs/*"],
  ["GET", "/openapi.json"],
  ["GET", "/api/ws"],
  ["GET", "/metrics"]
])

/**
 * The request path, from the socket inwards (the README's "Request path" repeats this list):
 * 1. Node server (platform/HttpServerLive.ts): request id, in-flight tracking for the drain, 413 for
 *    an over-limit body without Content-Length (platform/bodyLimit.ts), malformed requests answered,
 *    and the lean routes (platform/leanRoutes.ts: the probes, GET /api/credits/balance) answered here,
 *    each with the same auth, limit, CORS headers, error body and access line as the chain below.
 * 2. Access log (platform/middleware/requestLog.ts): the request id on every log line, one line per request.
 * 3. CORS (platform/middleware/cors.ts): preflights, and the CORS headers on every answer, errors too.
 * 4. Error envelope (platform/middleware/errorEnvelope.ts): every failure becomes the one error body,
 *    including the 413 of the body limit (HttpIncomingMessage.MaxBodySize below) when a body is read.
 * 5. Request screening (platform/middleware/crossSite.ts): 415 for non-JSON, 403 for a denied Origin
 *    on an unauthenticated write, NUL bytes and nesting depth.
 * 6. The route group's middleware: accounts/Authentication.ts (session, then the general per-user
 *    limit) or platform/AdminAuth.ts; public routes have none.
 * 7. The handler, which applies its route's own rate limit (platform/RateLimitGuard.ts).
 * `HttpApiBuilder.middleware` layers wrap in reverse order of provision: the last provided is outermost.
 */
const makeServeLive = (extraRoutes: ExtraRoutes) => Layer.unwrapEffect(
  Effect.map(Effect.zip(AppConfig, FiberRef.get(FiberRef.currentTracerEnabled)), ([config, tracing]) => {
    const limit = config.http.bodyLimitBytes
    // upload routes read their multipart body with their own limits (http/uploads), counted while it streams
    const limitFor = bodyLimitFor({ general: limit, uploads: config.uploads.requestLimitBytes })
    return HttpApiBuilder.serve(makeRequestLog(routeTemplates)).pipe(
      // Probes are hit constantly and need no trace; the span (URL parse, header copies) was a
      // measurable share of their cost. No span at all while nothing exports them (tracing.ts:
      // AppLive turns span-making on for the build only when an exporter is configured).
      HttpMiddleware.withTracerDisabledWhen((request) => !tracing || request.url.startsWith("/health/") || request.url === "/metrics"),
      Layer.provide(extraRoutes),
      // /metrics here unless it has its own listener (METRICS_PORT, below).
      Layer.provide(Option.isNone(config.telemetry.metricsPort) ? MetricsRouteLive : Layer.empty),
      Layer.provide(GenerationEventsSocketLive),
      Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
      Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
      Layer.provide(HttpApiBuilder.middleware(cors(config.cors.policy))), // added after, so outside, the envelope
      Layer.provide(HttpApiBuilder.middleware(errorEnvelope(limitFor))),
      Layer.provide(HttpApiBuilder.middleware(crossSite(config.cors.policy, jsonRoutes))), // inside the envelope
      Layer.provide(ApiLive),
      // Bodies without a Content-Length are answered 413 at the Node level (http/bodyLimit.ts) before
      // the platform's own check, which stays as a backstop for any other reader.
      Layer.provide(Layer.succeed(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(limit)))),
      // The same (memoized) router instance `serve` uses, so Swagger and extra routes land on it.
      Layer.provide(HttpApiBuilder.Router.Live)
    )
  })
)

/**
 * The HTTP side of the process, in build order: the Node server, then `serve`, then the drain.
 * Release runs the other way: drain (delay, stop accepting, in-flight), detach, close.
 */
export const makeHttpLive = (options: HttpOptions = {}) =>
  Layer.unwrapEffect(Effect.map(AppConfig, (config) =>
    HttpDrainLive.pipe(
      Layer.provide(makeServeLive(options.extraRoutes ?? Layer.empty)),
      Layer.provideMerge(makeHttpServerLive(options.listen).pipe(Layer.provide(options.leanRoutes === false ? Layer.empty : LeanRoutesLive))),
      // /metrics' own listener (METRICS_PORT; none otherwise): built before the API's server, released after its drain.
      Layer.provideMerge(Option.match(config.telemetry.metricsPort, { onNone: () => Layer.empty, onSome: makeMetricsServerLive }))
    )))

export const HttpLive = makeHttpLive()
