import type * as http from "node:http"
import { Cause, Context, Effect, Exit, FiberId, Runtime } from "effect"
import { causeToEnvelope, envelopeBody } from "./middleware/errorEnvelope.js"

/** What a lean route answers: the Node server adds the request id, CORS headers, content type and length. */
export interface LeanAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** One request's answer in progress: undefined when it was aborted (the client went away). */
export interface LeanRun {
  readonly answered: Promise<LeanAnswer | undefined>
  readonly abort: () => void
}

/**
 * A hot route answered by the Node server ahead of Effect's router and middleware chain (see
 * HttpServerLive). It must answer exactly as its HttpApi route would (the route stays declared there,
 * for OpenAPI and for every request the lean path leaves alone): the Node server gives it the request
 * id, in-flight tracking, the CORS headers and the access-log line; the route gives its own
 * authentication, rate-limit headers, body checks and the one error body.
 * - A GET route takes requests without a body.
 * - A POST route with `json` takes only a plain JSON body: `Content-Type: application/json` (any
 *   parameters), a Content-Length from 1 to `json.maxBytes`, no Transfer-Encoding or Content-Encoding,
 *   and `json.accepts(req)`; the server reads it whole and hands it over. Any other request (no body,
 *   another type, chunked, larger, not accepted) takes the usual path, which answers it as before.
 */
export type LeanRoute =
  | {
    readonly method: "GET"
    readonly path: string
    readonly answer: (req: http.IncomingMessage, requestId: string) => LeanRun
  }
  | {
    readonly method: "POST"
    readonly path: string
    readonly json: { readonly maxBytes: number; readonly accepts: (req: http.IncomingMessage) => boolean }
    readonly answer: (req: http.IncomingMessage, requestId: string, body: Buffer) => LeanRun
  }

/** The lean routes of this server (none unless the HTTP composition provides them). */
export class LeanRoutes extends Context.Tag("app/LeanRoutes")<LeanRoutes, ReadonlyArray<LeanRoute>>() {}

/** The error body of a failure, as a lean answer, with the route's own headers (rate-limit headers, say). */
export const failureAnswer = (cause: Cause.Cause<unknown>, requestId: string, headers: Readonly<Record<string, string>> = {}) =>
  Effect.map(causeToEnvelope(cause, 0), (envelope): LeanAnswer => ({
    status: envelope.status,
    headers: envelope.headers === undefined ? headers : { ...headers, ...envelope.headers },
    body: JSON.stringify(envelopeBody(envelope, requestId))
  }))

/**
 * Runs a route's answer as one fiber on the app's runtime, with the request id on its log lines
 * (as requestLog does on the usual path); a failure it did not answer itself gets the error body.
 */
export const makeLeanRunner = <R>(runtime: Runtime.Runtime<R>) => {
  const fork = Runtime.runFork(runtime)
  return (effect: Effect.Effect<LeanAnswer, unknown, R>, requestId: string): LeanRun => {
    const fiber = fork(effect.pipe(
      Effect.catchAllCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.interrupt : failureAnswer(cause, requestId)),
      Effect.annotateLogs("requestId", requestId)
    ))
    return {
      answered: new Promise((resolve) => fiber.addObserver((exit) => resolve(Exit.isSuccess(exit) ? exit.value : undefined))),
      abort: () => fiber.unsafeInterruptAsFork(FiberId.none)
    }
  }
}
