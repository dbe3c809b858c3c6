import { type HttpApp, HttpServerError, HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { type Cause, Context, Effect, Exit } from "effect"
import { wasRefusedForSize } from "../bodyLimit.js"
import { requestIdOf } from "../requestContext.js"

/**
 * The status of a request that did not end with the handler's answer: what the platform answers
 * for the failure (499 when the client went away, 503 when the server interrupted it, else 500).
 */
const failureStatus = (cause: Cause.Cause<unknown>) =>
  Effect.map(HttpServerError.causeResponse(cause), ([response]) => response.status)

/** The access-log line of one request (also written for the requests HttpServerLive answers itself). */
export const accessLine = (method: string, route: string, status: number, durationMs: number, requestId: string) =>
  Effect.logInfo("request", { method, route, status, durationMs }).pipe(Effect.annotateLogs("requestId", requestId))

const accessLineSince = (method: string, route: string, start: number, status: number) =>
  Effect.logInfo("request", { method, route, status, durationMs: Math.round((performance.now() - start) * 100) / 100 })

/**
 * Outermost middleware: annotates every log line below with the request id (assigned by the
 * HTTP server, see HttpServerLive) and writes one access log line per request. Everything inside
 * the HttpApi already answers in the error shape (see errorEnvelope), so a failure reaching this
 * level is a client that went away (499), an interrupted request (503) or a 500.
 */
export const requestLog = (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const start = performance.now()
    const queryAt = request.url.indexOf("?")
    const route = queryAt === -1 ? request.url : request.url.slice(0, queryAt)
    return app.pipe(
      Effect.onExit((exit) => {
        // A body refused at the Node level (see bodyLimit) got 413, whatever the handler did.
        if (wasRefusedForSize(NodeHttpServerRequest.toIncomingMessage(request))) return accessLineSince(request.method, route, start, 413)
        return Exit.isSuccess(exit)
          ? accessLineSince(request.method, route, start, exit.value.status)
          : Effect.flatMap(failureStatus(exit.cause), (status) => accessLineSince(request.method, route, start, status))
      }),
      Effect.annotateLogs("requestId", requestIdOf(request.headers))
    )
  })
