import { randomUUID } from "node:crypto"
import { type HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect } from "effect"
import { CurrentRequestId, isValidRequestId } from "../requestContext.js"
import { causeToResponse } from "./errorEnvelope.js"

/**
 * Outermost middleware: gives each request an id (a valid inbound X-Request-Id is kept), echoes it
 * on the response, annotates every log line below with it, and writes one access log line.
 */
export const requestLog = (limitBytes: number) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const inbound = request.headers["x-request-id"]
    const requestId = inbound !== undefined && isValidRequestId(inbound) ? inbound : randomUUID()
    const start = performance.now()
    const queryAt = request.url.indexOf("?")
    const path = queryAt === -1 ? request.url : request.url.slice(0, queryAt)
    return app.pipe(
      Effect.catchAllCause((cause) => causeToResponse(cause, limitBytes)),
      Effect.tap((response) =>
        Effect.logInfo("request", {
          method: request.method,
          route: path,
          status: response.status,
          durationMs: Math.round((performance.now() - start) * 100) / 100
        })
      ),
      Effect.map((response) => HttpServerResponse.setHeader(response, "x-request-id", requestId)),
      Effect.annotateLogs("requestId", requestId),
      Effect.locally(CurrentRequestId, requestId)
    )
  })
