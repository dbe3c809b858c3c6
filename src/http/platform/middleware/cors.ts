import { type HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect } from "effect"
import { type CorsPolicy, isAllowedOrigin } from "../../../services/platform/CorsPolicy.js"

const addVaryOrigin = (vary: string | undefined): string => {
  if (vary === undefined || vary === "") return "Origin"
  const names = vary.toLowerCase().split(",").map((s) => s.trim())
  return names.includes("origin") || names.includes("*") ? vary : `${vary}, Origin`
}

const varyOnly = (response: HttpServerResponse.HttpServerResponse) => {
  const vary = addVaryOrigin(response.headers["vary"])
  return vary === response.headers["vary"] ? response : HttpServerResponse.setHeader(response, "vary", vary)
}

/**
 * The CORS headers of an answer to a request that is not a preflight: `Vary: Origin` on every one,
 * and the Access-Control-Allow-* headers when the Origin is allowed. `vary` is the answer's own.
 */
export const answerCorsHeaders = (policy: CorsPolicy, origin: string | undefined, vary: string | undefined): Record<string, string> => {
  if (origin === undefined || !isAllowedOrigin(policy, origin)) return { vary: addVaryOrigin(vary) }
  const headers: Record<string, string> = {
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    vary: addVaryOrigin(vary)
  }
  if (policy.exposeHeaders !== "") headers["access-control-expose-headers"] = policy.exposeHeaders
  return headers
}

/**
 * HttpApi-level middleware, outside the error envelope, so every answer (404, 413, 500 and
 * preflights for routes that only exist as POST included) carries `Vary: Origin`, and those for
 * an allowed origin carry the Access-Control-Allow-* headers. A preflight (OPTIONS with
 * Access-Control-Request-Method) is answered here with 204: for a denied origin without any
 * Access-Control-Allow-* header, which the browser treats as a refusal.
 *
 * CORS is not authorization: a denied "simple" GET still reaches its handler; the browser only
 * hides the answer. State-changing requests from a denied origin without credentials are refused
 * by crossSite (inside this middleware, so its 403 carries `Vary: Origin` too).
 */
export const cors = (policy: CorsPolicy) => {
  const preflightDenied = { vary: "Origin" }
  const preflightAllowed = (origin: string) => {
    const headers: Record<string, string> = {
      "access-control-allow-origin": origin,
      "access-control-allow-credentials": "true",
      "access-control-max-age": String(policy.maxAgeSeconds),
      vary: "Origin"
    }
    if (policy.allowMethods !== "") headers["access-control-allow-methods"] = policy.allowMethods
    if (policy.allowHeaders !== "") headers["access-control-allow-headers"] = policy.allowHeaders
    return headers
  }
  return (app: HttpApp.Default): HttpApp.Default =>
    Effect.withFiberRuntime((fiber) => {
      const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
      const origin = request.headers["origin"]
      if (origin === undefined) return Effect.map(app, varyOnly)
      const allowed = isAllowedOrigin(policy, origin)
      if (request.method === "OPTIONS" && request.headers["access-control-request-method"] !== undefined) {
        return Effect.succeed(
          HttpServerResponse.empty({ status: 204, headers: allowed ? preflightAllowed(origin) : preflightDenied })
        )
      }
      if (!allowed) return Effect.map(app, varyOnly)
      return Effect.map(app, (response) => HttpServerResponse.setHeaders(response, answerCorsHeaders(policy, origin, response.headers["vary"])))
    })
}
