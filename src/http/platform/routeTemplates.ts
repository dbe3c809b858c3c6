import { HttpApi, type HttpApiGroup } from "@effect/platform"
import * as FindMyWay from "find-my-way-ts"

/** A request's route template (`/api/generations/:id`), the label of its metrics: never the raw path. */
export type RouteTemplateOf = (method: string, url: string) => string

/** What requests that match no declared route are labelled: one value, so label cardinality stays bounded. */
export const UNMATCHED_ROUTE = "unmatched"

/**
 * Built once from the API contract plus the routes served beside it (`extra`: /docs, /metrics...),
 * with find-my-way-ts, the router the platform routes with, so a path gets the template it is
 * routed by. A look-up per request is one radix-tree walk.
 */
export const makeRouteTemplates = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<Id, Groups, E, R>,
  extra: ReadonlyArray<readonly [method: string, path: `/${string}`]> = []
): RouteTemplateOf => {
  const router = FindMyWay.make<string>()
  HttpApi.reflect(api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => router.on(endpoint.method, endpoint.path, endpoint.path)
  })
  for (const [method, path] of extra) router.on(method, path, path)
  return (method, url) => {
    const queryAt = url.indexOf("?")
    return router.find(method, queryAt === -1 ? url : url.slice(0, queryAt))?.handler ?? UNMATCHED_ROUTE
  }
}
