import { type HttpApp, HttpServerError, HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Cause, Context, Effect, Exit, FiberId, FiberRef, FiberRefs, HashMap, List, LogLevel, type Runtime } from "effect"
import { wasRefusedForSize } from "../bodyLimit.js"
import { requestIdOf } from "../requestContext.js"
import { type RouteTemplateOf, UNMATCHED_ROUTE } from "../routeTemplates.js"
import type { AccessLine } from "../../../services/platform/AccessLog.js"
import { recordRequest } from "../../../services/platform/metrics.js"

/**
 * The status of a request that did not end with the handler's answer: what the platform answers
 * for the failure (499 when the client went away, 503 when the server interrupted it, else 500).
 */
const failureStatus = (cause: Cause.Cause<unknown>) =>
  Effect.map(HttpServerError.causeResponse(cause), ([response]) => response.status)

/**
 * The same access-log line for requests answered outside any fiber (HttpServerLive's probes and lean
 * routes) where the logger layer offers no AccessLog writer: handed straight to the loggers the
 * runtime carries, at the level and with the annotations the runtime has (an Effect run per line
 * cost the probes about a third of their throughput).
 */
export const makeAccessLog = (runtime: Runtime.Runtime<never>) => {
  const refs = runtime.fiberRefs
  if (LogLevel.greaterThan(FiberRefs.getOrDefault(refs, FiberRef.currentMinimumLogLevel), LogLevel.Info)) return () => undefined
  const loggers = FiberRefs.getOrDefault(refs, FiberRef.currentLoggers)
  const annotations = FiberRefs.getOrDefault(refs, FiberRef.currentLogAnnotations)
  return ({ durationMs, method, requestId, route, status }: AccessLine) => {
    const options = {
      fiberId: FiberId.none,
      logLevel: LogLevel.Info,
      message: ["request", { method, route, status, durationMs }],
      cause: Cause.empty,
      context: refs,
      spans: List.empty(),
      annotations: HashMap.set(annotations, "requestId", requestId as unknown),
      date: new Date()
    }
    for (const logger of loggers) logger.log(options)
  }
}

const accessLineSince = (method: string, route: string, start: number, status: number) =>
  Effect.logInfo("request", { method, route, status, durationMs: Math.round((performance.now() - start) * 100) / 100 })

/**
 * Outermost middleware: annotates every log line below with the request id (assigned by the
 * HTTP server, see HttpServerLive) and writes one access log line per request, and its one
 * observation of the request-duration histogram (labelled with the route template `templateOf`
 * gives, not the raw path). Everything inside the HttpApi already answers in the error shape (see
 * errorEnvelope), so a failure reaching this level is a client that went away (499), an
 * interrupted request (503) or a 500.
 */
export const makeRequestLog = (templateOf: RouteTemplateOf) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const start = performance.now()
    const queryAt = request.url.indexOf("?")
    const route = queryAt === -1 ? request.url : request.url.slice(0, queryAt)
    const answered = (status: number) => {
      recordRequest(request.method, templateOf(request.method, route), status, performance.now() - start)
      return accessLineSince(request.method, route, start, status)
    }
    return app.pipe(
      Effect.onExit((exit) => {
        // A body refused at the Node level (see bodyLimit) got 413, whatever the handler did.
        if (wasRefusedForSize(NodeHttpServerRequest.toIncomingMessage(request))) return answered(413)
        return Exit.isSuccess(exit)
          ? answered(exit.value.status)
          : Effect.flatMap(failureStatus(exit.cause), answered)
      }),
      Effect.annotateLogs("requestId", requestIdOf(request.headers))
    )
  })

/** The middleware without route templates (every request labelled "unmatched"), for a server built without the API contract. */
export const requestLog = makeRequestLog(() => UNMATCHED_ROUTE)
