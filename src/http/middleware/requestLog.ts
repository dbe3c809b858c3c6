import { type HttpApp, HttpServerRequest } from "@effect/platform"
import { Context, Effect, Exit } from "effect"
import { requestIdOf } from "../requestContext.js"

/**
 * Outermost middleware: annotates every log line below with the request id (assigned by the
 * HTTP server, see HttpServerLive) and writes one access log line per request. Everything inside
 * the HttpApi already answers in the error shape (see errorEnvelope), so a failure reaching this
 * level is logged as a 500.
 */
export const requestLog = (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const start = performance.now()
    const queryAt = request.url.indexOf("?")
    const route = queryAt === -1 ? request.url : request.url.slice(0, queryAt)
    return app.pipe(
      Effect.onExit((exit) =>
        Effect.logInfo("request", {
          method: request.method,
          route,
          status: Exit.isSuccess(exit) ? exit.value.status : 500,
          durationMs: Math.round((performance.now() - start) * 100) / 100
        })
      ),
      Effect.annotateLogs("requestId", requestIdOf(request.headers))
    )
  })
