import { timingSafeEqual } from "node:crypto"
import * as http from "node:http"
import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect, Layer, Metric, Option, Redacted, Runtime } from "effect"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { sha256 } from "../../services/platform/digest.js"
import { httpRequestsInFlight } from "../../services/platform/metrics.js"
import { MetricsExporter } from "../../services/platform/MetricsExporter.js"
import { HttpConnections } from "./HttpServerLive.js"
import { envelopeBody } from "./middleware/errorEnvelope.js"
import { isValidRequestId, requestIdOf } from "./requestContext.js"

interface MetricsAnswer {
  readonly status: number
  readonly contentType: string
  readonly body: string
  readonly headers: Readonly<Record<string, string>>
}

const BEARER = /^Bearer\s+(.+)$/i

const error = (status: number, code: string, message: string, requestId: string, headers: Record<string, string> = {}): MetricsAnswer => ({
  status,
  contentType: "application/json",
  body: JSON.stringify(envelopeBody({ status, code, message }, requestId)),
  headers
})

/**
 * GET /metrics: with METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>` (compared
 * as SHA-256 digests in constant time); anything else is 401 in the one error body. The in-flight
 * gauge is read from the Node server's own count here, so requests pay nothing for it.
 */
const makeAnswer = Effect.gen(function*() {
  const config = yield* AppConfig
  const exporter = yield* MetricsExporter
  const connections = yield* Effect.serviceOption(HttpConnections)
  const expected = Option.map(config.telemetry.metricsToken, (token) => sha256(Redacted.value(token)))
  return (authorization: string | undefined, requestId: string): Effect.Effect<MetricsAnswer> => {
    if (Option.isSome(expected)) {
      const presented = authorization === undefined ? null : BEARER.exec(authorization)
      if (presented === null || !timingSafeEqual(sha256(presented[1]!.trim()), expected.value)) {
        return Effect.succeed(error(401, "UNAUTHORIZED", "A valid metrics token is required", requestId, { "www-authenticate": "Bearer" }))
      }
    }
    return Effect.gen(function*() {
      if (Option.isSome(connections)) yield* Metric.set(httpRequestsInFlight, connections.value.inFlight())
      const scrape = yield* exporter.scrape
      return { status: 200, contentType: scrape.contentType, body: scrape.body, headers: { "cache-control": "no-store" } }
    })
  }
})

/** /metrics on the main port's router (when METRICS_PORT is not set). */
export const MetricsRouteLive = Layer.unwrapEffect(
  Effect.map(makeAnswer, (answer) =>
    HttpApiBuilder.Router.use((router) =>
      router.get(
        "/metrics",
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          Effect.map(answer(request.headers["authorization"], requestIdOf(request.headers)), (found) =>
            HttpServerResponse.text(found.body, { status: found.status, contentType: found.contentType, headers: found.headers })))
      )
    ))
)

/** The /metrics listener of METRICS_PORT, when there is one. */
export class MetricsServer extends Context.Tag("app/MetricsServer")<MetricsServer, { readonly port: number }>() {}

/**
 * /metrics on its own listener (METRICS_PORT, on HOST): a plain Node server that answers only
 * GET /metrics (404 otherwise), so it can stay reachable to the scraper alone (a NetworkPolicy, a
 * port not exposed by the Service). Owns that listener: closed, with its connections, when the layer
 * is released at shutdown (after the API's drain).
 */
export const makeMetricsServerLive = (port: number) =>
  Layer.scoped(
    MetricsServer,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const answer = yield* makeAnswer
      const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
      const server = http.createServer((req, res) => {
        const inbound = req.headers["x-request-id"]
        const requestId = typeof inbound === "string" && isValidRequestId(inbound) ? inbound : crypto.randomUUID()
        const path = (req.url ?? "").split("?")[0]
        const found = req.method === "GET" && path === "/metrics"
          ? runPromise(answer(req.headers["authorization"], requestId))
          : Promise.resolve(error(404, "NOT_FOUND", "Only GET /metrics is served on this port", requestId))
        void found.then((a) => {
          res.writeHead(a.status, { ...a.headers, "content-type": a.contentType, "x-request-id": requestId }).end(a.body)
        }, () => {
          res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify(envelopeBody({ status: 500, code: "INTERNAL", message: "Internal server error" }, requestId)))
        })
      })
      yield* Effect.acquireRelease(
        Effect.async<void, Error>((resume) => {
          server.once("error", (cause) => resume(Effect.fail(cause)))
          server.listen(port, config.http.host, () => resume(Effect.void))
        }).pipe(Effect.orDie),
        () =>
          Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
            server.closeAllConnections()
          })
      )
      const address = server.address()
      return { port: typeof address === "object" && address !== null ? address.port : port }
    })
  )
