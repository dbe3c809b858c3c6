import { randomUUID } from "node:crypto"
import * as http from "node:http"
import type { Duplex } from "node:stream"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Runtime } from "effect"
import { bodyLimitFor, isStreamedBody, limitStreamedBody } from "./bodyLimit.js"
import { type Envelope, envelopeBody, tooLarge } from "./middleware/errorEnvelope.js"
import { isValidRequestId } from "./requestContext.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { Lifecycle } from "../../services/platform/Lifecycle.js"

/** What the drain needs to see of the Node server: its in-flight responses and the server itself. */
export interface HttpConnectionsShape {
  readonly server: http.Server
  readonly inFlight: () => number
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

interface ConnectionOptions {
  /** The body limit of a request URL (bodyLimit.ts: upload routes have their own). */
  readonly bodyLimitFor: (url: string) => number
  /** Called once per connection-level refusal ('clientError'), for the log. */
  readonly onClientError: (details: { readonly status: number; readonly code: string; readonly reason: string; readonly requestId: string }) => void
}

const makeConnections = (server: http.Server, options: ConnectionOptions): HttpConnectionsShape => {
  const inFlight = new Set<http.ServerResponse>()
  const tooLargeBody = (limit: number) => (requestId: string) => JSON.stringify(envelopeBody(tooLarge(limit), requestId))
  const waiters = new Set<() => void>()
  let closing = false
  // Registered before Effect's handler, so every request is counted from its first moment. The
  // request id is settled here too: a header set on the Node response costs less than any
  // per-request Effect machinery, and is present on every answer, errors included.
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
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
  })
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
      const server = http.createServer({ requestTimeout: 120_000, headersTimeout: 30_000 })
      const connections = makeConnections(server, {
        bodyLimitFor: bodyLimitFor({ general: config.http.bodyLimitBytes, uploads: config.uploads.requestLimitBytes }),
        onClientError: ({ requestId, ...details }) =>
          Runtime.runFork(runtime)(
            Effect.logInfo("request", details).pipe(Effect.annotateLogs("requestId", requestId))
          )
      })
      return Layer.mergeAll(
        NodeHttpServer.layer(() => server, {
          port: listen?.port ?? config.http.port,
          host: listen?.host ?? config.http.host
        }),
        Layer.succeed(HttpConnections, connections)
      )
    })
  )

/**
 * The HTTP part of graceful shutdown. Built above `serve`, so its finalizer runs before the request
 * handler is detached: keep serving for the drain delay (readiness is already 503), stop accepting,
 * then wait for in-flight requests. The shutdown cap bounds the wait.
 */
export const HttpDrainLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const lifecycle = yield* Lifecycle
    const connections = yield* HttpConnections
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* lifecycle.stage("http.drain-delay", Effect.sleep(config.shutdown.drainDelay))
        yield* lifecycle.stage("http.stop-accepting", Effect.sync(connections.stopAccepting))
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

