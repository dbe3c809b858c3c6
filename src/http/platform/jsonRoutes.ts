import { HttpApi, type HttpApiGroup, HttpMethod } from "@effect/platform"
import * as FindMyWay from "find-my-way-ts"

/** The endpoints of an HttpApi that read a JSON payload, matched the way the platform's router matches. */
export interface JsonRoutes {
  /** Whether `method url` (the query string is ignored) reaches an endpoint with a JSON payload. */
  readonly has: (method: string, url: string) => boolean
  /** Whether it reaches an endpoint that takes JSON besides other encodings (a form too, say). */
  readonly alsoJson: (method: string, url: string) => boolean
}

/**
 * Built once from the API contract: an endpoint reads JSON when it declares a payload, its method
 * carries a body, and every payload encoding is JSON (the default). Multipart, form and binary
 * payloads (`HttpApiSchema.Multipart`, `withEncoding`) are left to their own content types; an endpoint
 * taking JSON besides such an encoding (the payment callback: a form or JSON) is `alsoJson`. The
 * table uses find-my-way-ts, the router the platform routes with, so a path matches here exactly
 * when it matches there.
 */
export const makeJsonRoutes = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<Id, Groups, E, R>
): JsonRoutes => {
  const router = FindMyWay.make<true>()
  const mixed = FindMyWay.make<true>()
  let count = 0
  let mixedCount = 0
  HttpApi.reflect(api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint, payloads }) => {
      if (!HttpMethod.hasBody(endpoint.method) || payloads.size === 0) return
      // A multipart payload keeps the default (JSON) encoding annotation; only its content type tells it apart.
      const kinds = [...payloads.entries()].map(([contentType, { encoding }]) =>
        contentType === "multipart/form-data" ? "Multipart" : encoding.kind
      )
      if (kinds.every((kind) => kind === "Json")) {
        router.on(endpoint.method, endpoint.path, true)
        count++
      } else if (kinds.includes("Json")) {
        mixed.on(endpoint.method, endpoint.path, true)
        mixedCount++
      }
    }
  })
  return {
    has: (method, url) => count > 0 && router.find(method, url) !== undefined,
    alsoJson: (method, url) => mixedCount > 0 && mixed.find(method, url) !== undefined
  }
}
