import { type HttpApp, HttpServerError, HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Context, Effect, Exit } from "effect"
import { wasRefusedForSize } from "../bodyLimit.js"
import { requestIdOf } from "../requestContext.js"

/**
 * The status the client got: a body refused at the Node level (see bodyLimit) is 413 whatever the
 * handler computed; a failure is what the platform answers for it: 499 when the client went away
 * (nothing was sent), 503 when the server interrupted the request, otherwise 500.
 */
const statusOf = (request: HttpServerRequest.HttpServerRequest, exit: Exit.Exit<{ readonly status: number }, unknown>) => {
  if (wasRefusedForSize(NodeHttpServerRequest.toIncomingMessage(request))) return Effect.succeed(413)
  if (Exit.isSuccess(exit)) return Effect.succeed(exit.value.status)
  return Effect.map(HttpServerError.causeResponse(exit.cause), ([response]) => response.status)
}

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
        Effect.flatMap(statusOf(request, exit), (status) =>
          Effect.logInfo("request", {
            method: request.method,
            route,
            status,
            durationMs: Math.round((performance.now() - start) * 100) / 100
          }))
      ),
      Effect.annotateLogs("requestId", requestIdOf(request.headers))
    )
  })
