import { randomUUID } from "node:crypto"
import * as http from "node:http"
import type { Duplex } from "node:stream"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Duration, Effect, Layer, Option, Runtime } from "effect"
import { bodyLimitFor, isStreamedBody, limitStreamedBody } from "./bodyLimit.js"
import { type Envelope, envelopeBody, tooLarge } from "./middleware/errorEnvelope.js"
import { makeAccessLog } from "./middleware/requestLog.js"
import { AccessLog } from "../../services/platform/AccessLog.js"
import { answerCorsHeaders } from "./middleware/cors.js"
import { type LeanAnswer, type LeanRoute, LeanRoutes, type LeanRun } from "./leanRoutes.js"
import { jsonMediaType } from "./mediaType.js"
import type { CorsPolicy } from "../../services/platform/CorsPolicy.js"
import { makeOpenSockets, OpenSockets } from "./OpenSockets.js"
import { isValidRequestId } from "./requestContext.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { Health, type ReadinessReport } from "../../services/platform/Health.js"
import { Lifecycle, releaseBudget } from "../../services/platform/Lifecycle.js"
import { readinessAnswer } from "./readinessAnswer.js"
import { recordRequest } from "../../services/platform/metrics.js"

/** The route label of requests Node could not parse (no method or path to speak of). */
const UNPARSED_ROUTE = "unparsed"

/** What the drain needs to see of the Node server: its in-flight responses and the server itself. */
export interface HttpConnectionsShape {
  readonly server: http.Server
  readonly inFlight: () => number
  /** Requests answered on the lean path so far (see leanRoutes.ts). */
  readonly leanAnswers: () => number
  /** Stop listening, mark every unsent and later response `Connection: close`, drop idle sockets. */
  readonly stopAccepting: () => void
  /** Completes when no request is in flight. */
  readonly idle: Effect.Effect<void>
}

export class HttpConnections extends Context.Tag("app/HttpConnections")<HttpConnections, HttpConnectionsShape>() {}

/** What Node refuses before any request exists, answered in the one error body instead of Node's empty one. */
const clientErrorEnvelope = (error: NodeJS.ErrnoException): Envelope => {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, code: "REQUEST_HEADER_FIELDS_TOO_LARGE", message: "The request headers are too large" }
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, code: "REQUEST_TIMEOUT", message: "The request was not received in time" }
    default:
      return { status: 400, code: "MALFORMED_REQUEST", message: "The request is not valid HTTP/1.1" }
  }
}

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large" }

/** A probe's answer: status and JSON body, as the HttpApi route gives them. */
export interface ProbeAnswer { readonly status: number; readonly body: string }

/** The probes answered ahead of the Effect stack, by path: liveness at once, readiness from the Health service. */
export type Probes = Readonly<Record<string, () => ProbeAnswer | Promise<ProbeAnswer>>>

const LIVENESS: ProbeAnswer = { status: 200, body: JSON.stringify({ status: "ok" }) }

/**
 * The probes (GET /health/liveness and /health/readiness without an Origin) are answered by the
 * Node server before Effect's handler: an orchestrator hits them every few seconds on every
 * replica, and they must stay fast under load. Each still gets its request id (below), its
 * in-flight tracking for the drain, the same headers (Vary: Origin, as the CORS middleware adds)
 * and body as the HttpApi route, and its access-log line. With an Origin (CORS headers to decide)
 * or any other method a probe goes the usual way; the routes stay declared in the HttpApi (OpenAPI),
 * whose handlers answer the same.
 */
const probePath = (req: http.IncomingMessage, probes: Probes): string | undefined => {
  if (req.method !== "GET" || req.headers["origin"] !== undefined || req.url === undefined) return undefined
  const queryAt = req.url.indexOf("?")
  const path = queryAt === -1 ? req.url : req.url.slice(0, queryAt)
  return Object.hasOwn(probes, path) ? path : undefined
}

const writeProbe = (res: http.ServerResponse, answer: ProbeAnswer) =>
  res.writeHead(answer.status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(answer.body)),
    vary: "Origin"
  }).end(answer.body)

/**
 * The Node server, with a hook ahead of every 'request' listener (Effect's included): `prepare`
 * runs first for every request, and a request it answers itself goes no further.
 */
class AppHttpServer extends http.Server {
  answered: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | undefined
  // Node's EventEmitter.emit takes any listener arguments (`any` as in its own typing); only 'request' is looked at.
  override emit(event: string, ...args: Array<any>): boolean {
    if (event === "request" && this.answered?.(args[0], args[1]) === true) return true
    return super.emit(event, ...args)
  }
}

/** The lean route for this request, when it is one the route takes (see LeanRoute). */
const leanRouteOf = (req: http.IncomingMessage, routes: ReadonlyMap<string, LeanRoute>): LeanRoute | undefined => {
  if (routes.size === 0 || req.url === undefined) return undefined
  const queryAt = req.url.indexOf("?")
  const route = routes.get(`${req.method} ${queryAt === -1 ? req.url : req.url.slice(0, queryAt)}`)
  if (route === undefined) return undefined
  const headers = req.headers
  const length = headers["content-length"]
  if (route.method === "GET") {
    // the usual path decides what a body on a GET means (413 over the limit, say)
    return headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0") ? undefined : route
  }
  if (headers["transfer-encoding"] !== undefined || headers["content-encoding"] !== undefined || length === undefined) return undefined
  const bytes = /^[1-9][0-9]{0,9}$/.test(length) ? Number(length) : 0
  const type = headers["content-type"]
  return bytes > 0 && bytes <= route.json.maxBytes && type !== undefined && jsonMediaType(type) === "json" && route.json.accepts(req)
    ? route
    : undefined
}

/** The whole body of a request whose Content-Length was checked; undefined when the client went away first. */
const readBody = (req: http.IncomingMessage): Promise<Buffer | undefined> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
    })
    req.once("end", () => resolve(Buffer.concat(chunks, size)))
    req.once("error", () => resolve(undefined))
    req.once("close", () => {
      if (!req.complete) resolve(undefined)
    })
  })

interface ConnectionOptions {
  readonly probes: Probes
  /** Hot routes answered here, each as its HttpApi route would (see leanRoutes.ts). */
  readonly leanRoutes: ReadonlyArray<LeanRoute>
  /** For the CORS headers of lean answers, as the CORS middleware sets them. */
  readonly cors: CorsPolicy
  /** Called once per request answered before Effect's handler, for its access-log line. */
  readonly onAnswered: (details: { readonly method: string; readonly route: string; readonly status: number; readonly durationMs: number; readonly requestId: string }) => void
  /** The body limit of a request URL (bodyLimit.ts: upload routes have their own). */
  readonly bodyLimitFor: (url: string) => number
  /** Called once per connection-level refusal ('clientError'), for the log. */
  readonly onClientError: (details: { readonly status: number; readonly code: string; readonly reason: string; readonly requestId: string }) => void
}

const makeConnections = (server: AppHttpServer, options: ConnectionOptions): HttpConnectionsShape => {
  const inFlight = new Set<http.ServerResponse>()
  let leanAnswers = 0
  const leanRoutes = new Map(options.leanRoutes.map((route) => [`${route.method} ${route.path}`, route] as const))
  const tooLargeBody = (limit: number) => (requestId: string) => JSON.stringify(envelopeBody(tooLarge(limit), requestId))
  const waiters = new Set<() => void>()
  let closing = false
  // Runs before Effect's handler, so every request is counted from its first moment. The
  // request id is settled here too: a header set on the Node response costs less than any
  // per-request Effect machinery, and is present on every answer, errors included.
  server.answered = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const start = performance.now()
    const inbound = req.headers["x-request-id"]
    const requestId = typeof inbound === "string" && isValidRequestId(inbound) ? inbound : randomUUID()
    req.headers["x-request-id"] = requestId
    res.setHeader("x-request-id", requestId)
    if (isStreamedBody(req)) {
      const limit = options.bodyLimitFor(req.url ?? "")
      limitStreamedBody(req, res, limit, tooLargeBody(limit))
    }
    inFlight.add(res)
    if (closing) res.setHeader("connection", "close")
    res.once("close", () => {
      inFlight.delete(res)
      if (inFlight.size === 0) for (const wake of waiters) wake()
    })
    const path = probePath(req, options.probes)
    if (path === undefined) return answerLean(req, res, requestId, start)
    const answer = (probe: ProbeAnswer) => {
      if (res.writableEnded || res.destroyed) return
      writeProbe(res, probe)
      options.onAnswered({
        method: "GET",
        route: path,
        status: probe.status,
        durationMs: Math.round((performance.now() - start) * 100) / 100,
        requestId
      })
    }
    const found = options.probes[path]!()
    if (!(found instanceof Promise)) answer(found)
    else {
      found.then(answer, () => {
        const body = JSON.stringify(envelopeBody({ status: 500, code: "INTERNAL", message: "Internal server error" }, requestId))
        answer({ status: 500, body })
      })
    }
    return true
  }
  const answerLean = (req: http.IncomingMessage, res: http.ServerResponse, requestId: string, start: number): boolean => {
    const route = leanRouteOf(req, leanRoutes)
    if (route === undefined) return false
    leanAnswers++
    const logLine = (status: number) =>
      options.onAnswered({ method: route.method, route: route.path, status, durationMs: Math.round((performance.now() - start) * 100) / 100, requestId })
    if (route.method === "GET") respond(req, res, route.answer(req, requestId), logLine)
    else {
      void readBody(req).then((body) => (body === undefined ? logLine(499) : respond(req, res, route.answer(req, requestId, body), logLine)))
    }
    return true
  }
  const respond = (req: http.IncomingMessage, res: http.ServerResponse, run: LeanRun, logLine: (status: number) => void) => {
    // The client went away first: the answer is stopped, as the usual path interrupts its fiber (499).
    res.once("close", () => {
      if (!res.writableEnded) run.abort()
    })
    run.answered.then((answer: LeanAnswer | undefined) => {
      if (answer === undefined || res.writableEnded || res.destroyed) return logLine(499)
      const headers = {
        ...answer.headers,
        ...answerCorsHeaders(options.cors, req.headers["origin"], answer.headers["vary"]),
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(answer.body))
      }
      res.writeHead(answer.status, headers).end(answer.body)
      logLine(answer.status)
    })
  }
  // Node answers a request it cannot parse (an unknown method, a malformed request line, headers
  // over the limit) with an empty 400/431 and no request ever reaches the app; this answers in the
  // error body with a request id, like Node's default: only while the socket can still take a
  // response, then closing it. A reset connection gets no answer.
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
    // `_httpMessage` is Node's (untyped) response in progress on this socket; its default handler checks it the same way.
    const current = (socket as Duplex & { _httpMessage?: http.ServerResponse | null })._httpMessage
    if (error.code === "ECONNRESET" || !socket.writable || (current != null && current.headersSent)) {
      socket.destroy()
      return
    }
    const requestId = randomUUID()
    const envelope = clientErrorEnvelope(error)
    const body = JSON.stringify(envelopeBody(envelope, requestId))
    socket.end(
      `HTTP/1.1 ${envelope.status} ${STATUS_TEXT[envelope.status] ?? "Bad Request"}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`
    )
    options.onClientError({ status: envelope.status, code: envelope.code, reason: error.code ?? "unknown", requestId })
  })
  return {
    server,
    inFlight: () => inFlight.size,
    leanAnswers: () => leanAnswers,
    stopAccepting: () => {
      if (closing) return
      closing = true
      for (const res of inFlight) if (!res.headersSent) res.setHeader("connection", "close")
      if (server.listening) server.close()
      server.closeIdleConnections()
    },
    idle: Effect.async<void>((resume) => {
      if (inFlight.size === 0) return resume(Effect.void)
      const wake = () => {
        waiters.delete(wake)
        resume(Effect.void)
      }
      waiters.add(wake)
      return Effect.sync(() => waiters.delete(wake))
    })
  }
}

/**
 * The Node HTTP server. Owns the listening socket: it is closed by the drain (see HttpDrainLive)
 * or, if the drain never ran, by NodeHttpServer's own finalizer when this layer is released.
 */
export const makeHttpServerLive = (listen?: { readonly port: number; readonly host?: string }) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* AppConfig
      const runtime = yield* Effect.runtime<never>()
      const server = new AppHttpServer({ requestTimeout: 120_000, headersTimeout: 30_000 })
      // The logger layer's direct writer; a server built without it logs through the runtime's loggers.
      const accessLog = Option.match(yield* Effect.serviceOption(AccessLog), {
        onNone: () => makeAccessLog(runtime),
        onSome: (sink) => sink.write
      })
      // Absent where a test builds the server alone: then only liveness is answered here.
      const health = yield* Effect.serviceOption(Health)
      const runPromise = Runtime.runPromise(runtime)
      let lastReport: ReadinessReport | undefined
      let lastAnswer: ProbeAnswer | undefined
      const probes: Probes = Option.match(health, {
        onNone: () => ({ "/health/liveness": () => LIVENESS }),
        onSome: (health) => ({
          "/health/liveness": () => LIVENESS,
          "/health/readiness": () => {
            // While the cached checks are fresh, one answer (its body made once) serves every probe.
            const report = health.readinessNow()
            if (report === undefined) return runPromise(health.readiness()).then(readinessAnswer)
            if (report !== lastReport) {
              lastReport = report
              lastAnswer = readinessAnswer(report)
            }
            return lastAnswer!
          }
        })
      })
      const leanRoutes = yield* Effect.serviceOption(LeanRoutes)
      const connections = makeConnections(server, {
        probes,
        leanRoutes: Option.getOrElse(leanRoutes, () => []),
        cors: config.cors.policy,
        onAnswered: ({ durationMs, method, requestId, route, status }) => {
          // Answered at the Node level: the route is already a template (a probe's or a lean route's path).
          recordRequest(method, route, status, durationMs)
          accessLog({ method, route, status, durationMs, requestId })
        },
        bodyLimitFor: bodyLimitFor({ general: config.http.bodyLimitBytes, uploads: config.uploads.requestLimitBytes }),
        onClientError: ({ requestId, ...details }) => {
          recordRequest("-", UNPARSED_ROUTE, details.status, 0)
          Runtime.runFork(runtime)(
            Effect.logInfo("request", details).pipe(Effect.annotateLogs("requestId", requestId))
          )
        },
      })
      return Layer.mergeAll(
        NodeHttpServer.layer(() => server, {
          port: listen?.port ?? config.http.port,
          host: listen?.host ?? config.http.host
        }),
        Layer.succeed(HttpConnections, connections),
        Layer.succeed(OpenSockets, makeOpenSockets(server, { maxPerUser: config.websocket.maxPerUser }))
      )
    })
  )

/** How long open sockets get to finish their close handshake after being told to go away. */
const SOCKETS_CLOSE_LIMIT = Duration.seconds(2)

/**
 * The HTTP part of graceful shutdown. Built above `serve`, so its finalizer runs before the request
 * handler is detached: keep serving for the drain delay (readiness is already 503), stop accepting,
 * close the WebSockets (1001, going away), then wait for in-flight requests. The shutdown cap bounds
 * the wait; a socket still open past its limit is dropped when `serve` is released.
 */
export const HttpDrainLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const lifecycle = yield* Lifecycle
    const connections = yield* HttpConnections
    const sockets = yield* OpenSockets
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* lifecycle.stage("http.drain-delay", Effect.sleep(config.shutdown.drainDelay))
        yield* lifecycle.stage("http.stop-accepting", Effect.sync(connections.stopAccepting))
        yield* lifecycle.stage(
          "http.sockets",
          Effect.gen(function*() {
            const open = sockets.count()
            if (open > 0) yield* Effect.logInfo("closing websockets", { open })
            // Made interruptible: release code is not, and the limit must be a real bound.
            const closed = yield* Effect.interruptible(sockets.closeAll).pipe(Effect.timeoutOption(yield* releaseBudget(SOCKETS_CLOSE_LIMIT)))
            if (Option.isNone(closed)) {
              yield* Effect.logWarning("some websockets did not close in time; their connections destroyed", {
                destroyed: sockets.destroyRemaining()
              })
            }
          })
        )
        yield* lifecycle.stage(
          "http.in-flight",
          Effect.logInfo("waiting for in-flight requests", { inFlight: connections.inFlight() }).pipe(
            Effect.zipRight(connections.idle)
          )
        )
      })
    )
  })
)

