import { Headers, type HttpApp, HttpServerRequest } from "@effect/platform"
import { Context, Effect } from "effect"
import { type CorsPolicy, isAllowedOrigin } from "../../../services/platform/CorsPolicy.js"
import { inspectJson, jsonProblemEnvelope } from "../jsonBody.js"
import type { JsonRoutes } from "../jsonRoutes.js"
import { jsonMediaType } from "../mediaType.js"
import { requestIdOf } from "../requestContext.js"
import { envelopeResponse } from "./errorEnvelope.js"

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"])

const hasBody = (headers: Readonly<Record<string, string | undefined>>) =>
  headers["transfer-encoding"] !== undefined || (headers["content-length"] !== undefined && headers["content-length"] !== "0")

const unsupportedMediaType = {
  status: 415,
  code: "UNSUPPORTED_MEDIA_TYPE",
  message: "This endpoint accepts only a JSON body (Content-Type: application/json)"
}

const crossSiteRefused = {
  status: 403,
  code: "FORBIDDEN",
  message: "Cross-site requests from this origin are not allowed"
}

/**
 * HttpApi-level middleware, inside the error envelope and CORS, protecting against cross-site
 * requests a browser sends without a preflight (a form post or a `text/plain` fetch):
 * - an unauthenticated state-changing request (no Authorization header) whose Origin is present
 *   and not allowed by the CORS policy is refused 403 before any handler runs. No Origin
 *   (server-to-server callers such as payment callbacks) and allowed origins pass; a request with
 *   a bearer token cannot be forged by a page, which never holds the token.
 * - an endpoint with a JSON payload answers 415 to any other content type, and to a body without
 *   one (no body at all still reaches the schema, which answers 400). An endpoint that also takes
 *   another encoding (the payment callback takes a form) gets its other bodies untouched.
 * - a JSON body (on either kind of endpoint) is refused 400 when it nests deeper than MAX_JSON_DEPTH or holds U+0000 anywhere
 *   (see jsonBody.ts). The body text is cached by the platform, so the handler reads it again
 *   without another read of the socket.
 * GET, HEAD and OPTIONS pass untouched, at the cost of one comparison.
 */
export const crossSite = (policy: CorsPolicy, jsonRoutes: JsonRoutes) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    if (!STATE_CHANGING.has(request.method)) return app
    const headers = request.headers
    const requestId = requestIdOf(headers)
    if (headers["authorization"] === undefined) {
      const origin = headers["origin"]
      if (origin !== undefined && !isAllowedOrigin(policy, origin)) {
        return Effect.succeed(envelopeResponse(crossSiteRefused, requestId))
      }
    }
    const jsonOnly = jsonRoutes.has(request.method, request.url)
    if (!jsonOnly && !jsonRoutes.alsoJson(request.method, request.url)) return app
    const contentType = headers["content-type"]
    const mediaType = contentType === undefined ? undefined : jsonMediaType(contentType)
    if (!jsonOnly) {
      // The endpoint takes other encodings too: only a JSON body is screened here.
      if (mediaType === undefined) return app
    } else if (contentType === undefined ? hasBody(headers) : mediaType === undefined) {
      return Effect.succeed(envelopeResponse(unsupportedMediaType, requestId))
    }
    // The platform parses a body as JSON only when its type contains "application/json"; a
    // structured `+json` type is handed on as that, so the handler reads this same cached text.
    const forHandler = mediaType === "structured"
      ? request.modify({ headers: Headers.set(headers, "content-type", "application/json") })
      : request
    const next = forHandler === request ? app : Effect.provideService(app, HttpServerRequest.HttpServerRequest, forHandler)
    // A failed read is cached too: the handler's own read fails the same way and the envelope answers it.
    return Effect.matchEffect(forHandler.text, { onFailure: () => next, onSuccess: (text) => {
      let parsed: unknown
      try {
        parsed = text === "" ? null : JSON.parse(text)
      } catch {
        return next // the platform parses it again and answers 400 MALFORMED_REQUEST
      }
      const problem = inspectJson(parsed)
      return problem === undefined ? next : Effect.succeed(envelopeResponse(jsonProblemEnvelope(problem), requestId))
    } })
  })
