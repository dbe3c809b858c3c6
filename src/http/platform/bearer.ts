import { HttpServerRequest } from "@effect/platform"
import { Effect, Option, Redacted } from "effect"

// The platform's bearer decoder takes whatever follows the first 7 characters of the header; the
// scheme itself is checked here.
export const BEARER_SCHEME = /^Bearer /i

/** The bearer token of the current request, if it really came as `Authorization: Bearer <token>`. */
export const bearerToken = (token: Redacted.Redacted<string>) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const header = request.headers["authorization"]
    const value = Redacted.value(token)
    return header !== undefined && BEARER_SCHEME.test(header) && value.trim() !== "" ? Option.some(value.trim()) : Option.none()
  })

/** The current request's `Authorization: Bearer <token>`, read from the header (for routes without a security middleware). */
export const requestBearerToken = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
  const header = request.headers["authorization"]
  const value = header !== undefined && BEARER_SCHEME.test(header) ? header.slice(7).trim() : ""
  return value === "" ? Option.none() : Option.some(Redacted.make(value))
})
