import {
  type HttpApp,
  HttpApiError,
  HttpApiSchema,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse,
  Multipart
} from "@effect/platform"
import { Cause, Context, Effect, type Schema } from "effect"
import { errorCodeOf, sqlStateOf } from "../../../services/platform/errorCode.js"
import { errorCode } from "../ApiError.js"
import { safeIssueMessage, truncate } from "../echo.js"
import { requestIdOf } from "../requestContext.js"

export interface Envelope {
  readonly status: number
  readonly message: string
  readonly code: string
  readonly fields?: Record<string, unknown>
  readonly headers?: Record<string, string>
  /** Logged as a warning with the cause: an answer the schemas should have given earlier. */
  readonly warning?: string
}

/** The platform's own error for a body over MaxBodySize; it carries no code, only this text. */
const MAX_BYTES_EXCEEDED = "maxBytes exceeded"

export const formatPath = (path: ReadonlyArray<PropertyKey>) =>
  path.length === 0 ? "(body)" : truncate(path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join("."))

/**
 * Postgres data exceptions that only a value from the request can cause (the code never builds
 * such values): text with NUL or outside the encoding, a string or number too large for its
 * column, text that is not a valid literal of its type. A safety net behind the schemas: the
 * request is answered 400 instead of a 500 defect (and logged as a warning, in case a schema or
 * the code should catch it earlier).
 */
const BAD_INPUT_SQLSTATES: ReadonlyMap<string, string> = new Map([
  ["22021", "contains a character the database cannot store"],
  ["22P05", "contains a character the database cannot store"],
  ["22001", "contains a value longer than the database accepts"],
  ["22003", "contains a number out of the range the database accepts"],
  ["22P02", "contains a value the database cannot read as its type"],
  ["22007", "contains an invalid date or time"],
  ["22008", "contains a date or time out of range"]
])

/**
 * The multipart parser (multipasta) reports a Content-Type without a boundary by emitting 'error'
 * before the platform listens, so it arrives as Node's ERR_UNHANDLED_ERROR carrying the parser's
 * error, instead of a MultipartError.
 */
const MULTIPASTA_ERRORS = new Set(["InvalidBoundary", "BadHeaders", "InvalidDisposition", "EndNotReached"])
const isMultipastaError = (error: unknown): boolean => {
  if (!(error instanceof Error) || errorCodeOf(error) !== "ERR_UNHANDLED_ERROR") return false
  const context = (error as { context?: unknown }).context
  return typeof context === "object" && context !== null && MULTIPASTA_ERRORS.has(String((context as { _tag?: unknown })._tag))
}

/** A multipart body the client got wrong; an InternalError (the server failing to store a part) stays a 500. */
const fromMultipart = (error: Multipart.MultipartError, limitBytes: number): Envelope | undefined => {
  switch (error.reason) {
    case "FileTooLarge":
    case "FieldTooLarge":
    case "BodyTooLarge":
      return tooLarge(limitBytes)
    case "TooManyParts":
      return { status: 413, code: "PAYLOAD_TOO_LARGE", message: "The multipart body has too many parts" }
    case "Parse":
      return { status: 400, code: "MALFORMED_REQUEST", message: "The multipart body could not be read" }
    case "InternalError":
      return undefined
  }
}

const fromFailure = (error: unknown, limitBytes: number): Envelope | undefined => {
  if (HttpServerError.isServerError(error)) {
    if (error._tag === "RouteNotFound") {
      const path = truncate(error.request.url.split("?")[0] ?? "")
      return { status: 404, code: "NOT_FOUND", message: `No route for ${error.request.method} ${path}` }
    }
    if (error._tag === "RequestError") {
      const cause = error.cause
      if (cause instanceof Error && cause.message === MAX_BYTES_EXCEEDED) {
        return tooLarge(limitBytes)
      }
      return unreadableBody
    }
    return undefined
  }
  if (error instanceof HttpApiError.HttpApiDecodeError) {
    const issues = error.issues.slice(0, 20).map((issue) => ({
      path: formatPath(issue.path),
      message: safeIssueMessage(issue.path, issue.message)
    }))
    const first = issues[0]
    return {
      status: 400,
      code: "VALIDATION_ERROR",
      message: first === undefined ? "The request is invalid" : `Invalid request at ${first.path}: ${first.message}`,
      fields: { issues }
    }
  }
  if (error instanceof Multipart.MultipartError) return fromMultipart(error, limitBytes)
  if (isMultipastaError(error)) {
    return { status: 400, code: "MALFORMED_REQUEST", message: "The multipart body could not be read" }
  }
  const sqlState = sqlStateOf(error)
  const badInput = sqlState === undefined ? undefined : BAD_INPUT_SQLSTATES.get(sqlState)
  if (badInput !== undefined) {
    return { status: 400, code: "VALIDATION_ERROR", message: `The request ${badInput}`, warning: `database refused a value from the request (SQLSTATE ${sqlState})` }
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

/** A body that is not what its Content-Type declares (JSON that does not parse, say). */
export const unreadableBody: Envelope = {
  status: 400,
  code: "MALFORMED_REQUEST",
  message: "The request body could not be read as the declared content type"
}

export const tooLarge = (limitBytes: number): Envelope => ({
  status: 413,
  code: "PAYLOAD_TOO_LARGE",
  message: `The request body is larger than the limit of ${limitBytes} bytes`,
  fields: { limitBytes }
})

const INTERNAL: Envelope = { status: 500, code: "INTERNAL", message: "Internal server error" }

/** The one error body, as a plain object (also written by the Node-level answers in HttpServerLive). */
export const envelopeBody = (envelope: Envelope, requestId: string) => ({
  success: false,
  error: envelope.message,
  message: envelope.message,
  code: envelope.code,
  requestId,
  ...envelope.fields
})

export const envelopeResponse = (envelope: Envelope, requestId: string) =>
  HttpServerResponse.unsafeJson(
    envelopeBody(envelope, requestId),
    { status: envelope.status, ...(envelope.headers === undefined ? {} : { headers: envelope.headers }) }
  )

/** The error body of a failure; defects are logged with their stack and answer 500. */
export const causeToEnvelope = (cause: Cause.Cause<unknown>, limitBytes: number): Effect.Effect<Envelope> =>
  Effect.suspend(() => {
    // The platform turns an unreadable body into a defect, so defects are classified too.
    const envelope = fromFailure(Cause.squash(cause), limitBytes)
    if (envelope !== undefined) {
      return envelope.warning === undefined ? Effect.succeed(envelope) : Effect.as(Effect.logWarning(envelope.warning, cause), envelope)
    }
    return Effect.as(Effect.logError("defect while handling a request", cause), INTERNAL)
  })

/** Turns any failure of the app into the error body; defects are logged with their stack and answer 500. */
export const causeToResponse = (cause: Cause.Cause<unknown>, limitBytes: number, requestId: string) =>
  // Re-raised as it is: who interrupted (the client going away, or the server) decides 499 or 503.
  Cause.isInterruptedOnly(cause)
    ? Effect.failCause(cause as Cause.Cause<never>) // no failure in it, only interruptions
    : Effect.map(causeToEnvelope(cause, limitBytes), (envelope) => envelopeResponse(envelope, requestId))

/**
 * HttpApi-level middleware: refuses bodies whose Content-Length is over the limit before anything
 * is read, and maps every failure below it (typed errors, decode errors, unknown routes, defects)
 * to the one error body.
 */
export const errorEnvelope = (limit: number | ((url: string) => number)) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const limitBytes = typeof limit === "number" ? limit : limit(request.url)
    const length = request.headers["content-length"]
    const requestId = requestIdOf(request.headers)
    if (length !== undefined && Number(length) > limitBytes) {
      return Effect.succeed(envelopeResponse(tooLarge(limitBytes), requestId))
    }
    return Effect.catchAllCause(app, (cause) => causeToResponse(cause, limitBytes, requestId))
  })
