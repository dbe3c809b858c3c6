import { FileSystem, HttpApiBuilder, HttpApiSwagger, HttpIncomingMessage, HttpMiddleware } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { AdminAuthLive, AdminCredentials } from "./platform/AdminAuth.js"
import { AdminHandlers } from "./jobs/AdminHandlers.js"
import { Api } from "./Api.js"
import { AuthenticationLive } from "./accounts/Authentication.js"
import { AuthHandlers } from "./accounts/AuthHandlers.js"
import { CreditsHandlers } from "./credits/CreditsHandlers.js"
import { HealthHandlers } from "./platform/HealthHandlers.js"
import { makeJsonRoutes } from "./platform/jsonRoutes.js"
import { cors } from "./platform/middleware/cors.js"
import { crossSite } from "./platform/middleware/crossSite.js"
import { errorEnvelope } from "./platform/middleware/errorEnvelope.js"
import { requestLog } from "./platform/middleware/requestLog.js"
import { AppConfig } from "../services/platform/AppConfig.js"
import type { AppServices } from "../services/jobs/JobDefinition.js"
import { HttpDrainLive, makeHttpServerLive } from "./platform/HttpServerLive.js"

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(HealthHandlers),
  Layer.provide(Layer.mergeAll(AuthHandlers, CreditsHandlers).pipe(Layer.provide(AuthenticationLive))),
  Layer.provide(AdminHandlers.pipe(Layer.provide(AdminAuthLive))),
  Layer.provide(AdminCredentials.Default)
)

/** Routes outside the HttpApi contract, added to the same router (tests use this); they may use the app's services. */
export type ExtraRoutes = Layer.Layer<never, never, HttpApiBuilder.Router | AppServices>

export interface HttpOptions {
  readonly listen?: { readonly port: number; readonly host?: string }
  readonly extraRoutes?: ExtraRoutes
}

const jsonRoutes = makeJsonRoutes(Api)

/** The HttpApi served with its middleware: request id and access log outermost, then the error body. */
const makeServeLive = (extraRoutes: ExtraRoutes) => Layer.unwrapEffect(
  Effect.map(AppConfig, (config) => {
    const limit = config.http.bodyLimitBytes
    return HttpApiBuilder.serve(requestLog).pipe(
      // Probes are hit constantly and need no trace; the span (URL parse, header copies) was a
      // measurable share of their cost.
      HttpMiddleware.withTracerDisabledWhen((request) => request.url.startsWith("/health/")),
      Layer.provide(extraRoutes),
      Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
      Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
      Layer.provide(HttpApiBuilder.middleware(cors(config.cors.policy))), // added after, so outside, the envelope
      Layer.provide(HttpApiBuilder.middleware(errorEnvelope(limit))),
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
  HttpDrainLive.pipe(
    Layer.provide(makeServeLive(options.extraRoutes ?? Layer.empty)),
    Layer.provideMerge(makeHttpServerLive(options.listen))
  )

export const HttpLive = makeHttpLive()
