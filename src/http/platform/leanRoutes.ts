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
 * A hot GET route answered by the Node server ahead of Effect's router and middleware chain (see
 * HttpServerLive), for a request without a body. It must answer exactly as its HttpApi route would
 * (the route stays declared there, for OpenAPI and for requests the lean path leaves alone):
 * the Node server gives it the request id, in-flight tracking, the CORS headers and the access-log
 * line; the route gives its own authentication, rate-limit headers and the one error body.
 */
export interface LeanRoute {
  readonly method: "GET"
  readonly path: string
  readonly answer: (req: http.IncomingMessage, requestId: string) => LeanRun
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
