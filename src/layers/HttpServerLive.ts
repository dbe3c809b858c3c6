import { randomUUID } from "node:crypto"
import * as http from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { isValidRequestId } from "../http/requestContext.js"
import { AppConfig } from "../services/AppConfig.js"
import { Lifecycle } from "../services/Lifecycle.js"

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

const makeConnections = (server: http.Server): HttpConnectionsShape => {
  const inFlight = new Set<http.ServerResponse>()
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
    inFlight.add(res)
    if (closing) res.setHeader("connection", "close")
    res.once("close", () => {
      inFlight.delete(res)
      if (inFlight.size === 0) for (const wake of waiters) wake()
    })
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
      const server = http.createServer({ requestTimeout: 120_000, headersTimeout: 30_000 })
      const connections = makeConnections(server)
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

