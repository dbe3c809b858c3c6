import { randomUUID } from "node:crypto"
import { HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect, Exit } from "effect"
import { CurrentRequestId, isValidRequestId } from "../requestContext.js"

/**
 * Outermost middleware: gives each request an id (a valid inbound X-Request-Id is kept), echoes it
 * on the response, annotates every log line below with it, and writes one access log line.
 * Everything inside the HttpApi already answers in the error shape (see errorEnvelope), so a
 * failure reaching this level is logged as a 500.
 */
export const requestLog = (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const inbound = request.headers["x-request-id"]
    const requestId = inbound !== undefined && isValidRequestId(inbound) ? inbound : randomUUID()
    const start = performance.now()
    const queryAt = request.url.indexOf("?")
    const route = queryAt === -1 ? request.url : request.url.slice(0, queryAt)
    // `serve` middleware wraps the app after the response is written, so the header goes on
    // through a pre-response handler, which runs just before writing.
    return HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.succeed(HttpServerResponse.setHeader(response, "x-request-id", requestId))
    ).pipe(
      Effect.zipRight(app),
      Effect.onExit((exit) =>
        Effect.logInfo("request", {
          method: request.method,
          route,
          status: Exit.isSuccess(exit) ? exit.value.status : 500,
          durationMs: Math.round((performance.now() - start) * 100) / 100
        })
      ),
      Effect.annotateLogs("requestId", requestId),
      Effect.locally(CurrentRequestId, requestId)
    )
  })
