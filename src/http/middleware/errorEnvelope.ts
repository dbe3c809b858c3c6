import {
  type HttpApp,
  HttpApiError,
  HttpApiSchema,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Cause, Context, Effect, type Schema } from "effect"
import { errorCode } from "../ApiError.js"
import { requestIdOf } from "../requestContext.js"

interface Envelope {
  readonly status: number
  readonly message: string
  readonly code: string
  readonly fields?: Record<string, unknown>
  readonly headers?: Record<string, string>
}

/** The platform's own error for a body over MaxBodySize; it carries no code, only this text. */
const MAX_BYTES_EXCEEDED = "maxBytes exceeded"

const formatPath = (path: ReadonlyArray<PropertyKey>) =>
  path.length === 0 ? "(body)" : path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".")

const fromFailure = (error: unknown, limitBytes: number): Envelope | undefined => {
  if (HttpServerError.isServerError(error)) {
    if (error._tag === "RouteNotFound") {
      return { status: 404, code: "NOT_FOUND", message: `No route for ${error.request.method} ${error.request.url.split("?")[0]}` }
    }
    if (error._tag === "RequestError") {
      const cause = error.cause
      if (cause instanceof Error && cause.message === MAX_BYTES_EXCEEDED) {
        return tooLarge(limitBytes)
      }
      return { status: 400, code: "MALFORMED_REQUEST", message: "The request body could not be read as the declared content type" }
    }
    return undefined
  }
  if (error instanceof HttpApiError.HttpApiDecodeError) {
    const first = error.issues[0]
    const where = first === undefined ? "" : `${formatPath(first.path)}: ${first.message}`
    return {
      status: 400,
      code: "VALIDATION_ERROR",
      message: where === "" ? "The request is invalid" : `Invalid request at ${where}`,
      fields: { issues: error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })) }
    }
  }
  if (typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string") {
    const schema = (error as { constructor: unknown }).constructor as Schema.Schema.All
    if (typeof schema === "function" && "ast" in schema) {
      const { _tag, message, ...rest } = error as unknown as { _tag: string; message?: string } & Record<string, unknown>
      const status = HttpApiSchema.getStatusError(schema)
      const headers: Record<string, string> = {}
      if (status === 429 && typeof rest["retryAfter"] === "number") headers["retry-after"] = String(rest["retryAfter"])
      if (status === 401) headers["www-authenticate"] = "Bearer"
      return { status, code: errorCode(_tag), message: message ?? _tag, fields: rest, headers }
    }
  }
  return undefined
}

const tooLarge = (limitBytes: number): Envelope => ({
  status: 413,
  code: "PAYLOAD_TOO_LARGE",
  message: `The request body is larger than the limit of ${limitBytes} bytes`,
  fields: { limitBytes }
})

const INTERNAL: Envelope = { status: 500, code: "INTERNAL", message: "Internal server error" }

export const envelopeResponse = (envelope: Envelope, requestId: string) =>
  HttpServerResponse.unsafeJson(
    {
      success: false,
      error: envelope.message,
      message: envelope.message,
      code: envelope.code,
      requestId,
      ...envelope.fields
    },
    { status: envelope.status, ...(envelope.headers === undefined ? {} : { headers: envelope.headers }) }
  )

/** Turns any failure of the app into the error body; defects are logged with their stack and answer 500. */
export const causeToResponse = (cause: Cause.Cause<unknown>, limitBytes: number, requestId: string) =>
  Effect.suspend(() => {
    if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
    // The platform turns an unreadable body into a defect, so defects are classified too.
    const envelope = fromFailure(Cause.squash(cause), limitBytes)
    if (envelope !== undefined) return Effect.succeed(envelopeResponse(envelope, requestId))
    return Effect.logError("defect while handling a request", cause).pipe(
      Effect.as(envelopeResponse(INTERNAL, requestId))
    )
  })

/**
 * HttpApi-level middleware: refuses bodies whose Content-Length is over the limit before anything
 * is read, and maps every failure below it (typed errors, decode errors, unknown routes, defects)
 * to the one error body.
 */
export const errorEnvelope = (limitBytes: number) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const length = request.headers["content-length"]
    const requestId = requestIdOf(request.headers)
    if (length !== undefined && Number(length) > limitBytes) {
      return Effect.succeed(envelopeResponse(tooLarge(limitBytes), requestId))
    }
    return Effect.catchAllCause(app, (cause) => causeToResponse(cause, limitBytes, requestId))
  })
