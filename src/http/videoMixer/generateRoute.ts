import { HttpApiError } from "@effect/platform"
import { Cause, Effect, Either, Option, Schema } from "effect"
import { VideoMixer } from "../../services/videoMixer/VideoMixer.js"
import { makeAuthenticate, missingToken } from "../accounts/Authentication.js"
import { BEARER_SCHEME } from "../platform/bearer.js"
import { inspectJson, jsonProblemEnvelope } from "../platform/jsonBody.js"
import { failureAnswer, type LeanAnswer, type LeanRoute, makeLeanRunner } from "../platform/leanRoutes.js"
import { type Envelope, envelopeBody, unreadableBody } from "../platform/middleware/errorEnvelope.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"
import { rateLimitHeaders } from "../platform/rateLimitHeaders.js"
import { generatedBody } from "./generationItem.js"
import { GENERATED_STATUS, MixRequest } from "./VideoMixerApi.js"

/** Generate bodies are a few hundred bytes; anything larger takes the usual path (whose limit still applies). */
const MAX_BYTES = 64 * 1024

// The payload schema its HttpApi declaration uses, decoded as HttpApiBuilder does. The answer is not
// encoded again: `generatedBody` is typed as the success schema's encoded form, whose fields are plain
// JSON values (no transformation), and the comparison test checks the bodies byte for byte.
const decodePayload = Schema.decodeUnknownEither(MixRequest)

const answerEnvelope = (envelope: Envelope, requestId: string, headers: Readonly<Record<string, string>> = {}): LeanAnswer => ({
  status: envelope.status,
  headers: envelope.headers === undefined ? headers : { ...headers, ...envelope.headers },
  body: JSON.stringify(envelopeBody(envelope, requestId))
})

/**
 * POST /api/apps/video-mixer/generate on the lean path (platform/leanRoutes.ts): the hot write. The
 * same work and answers, in the same order, as the HttpApi route (the cross-site JSON screen, then
 * Authentication with the general per-user limit, then the payload's schema, then the handler in
 * VideoMixerHandlers.ts: the route's own limit and the generate), without the router and the
 * middleware chain, and with the route's limit counted in the session check's round trip. Requests
 * it does not take (no bearer scheme, another content type, chunked or large bodies) go the usual
 * way; test/videoMixer/generateRoute.test.ts compares the two.
 */
export const generateRoute = Effect.gen(function*() {
  const authenticate = yield* makeAuthenticate
  const guard = yield* RateLimitGuard
  const mixer = yield* VideoMixer
  const run = makeLeanRunner(yield* Effect.runtime<never>())

  const answer = (token: string, text: string, requestId: string): Effect.Effect<LeanAnswer, unknown> => {
    let parsed: Option.Option<unknown>
    try {
      parsed = Option.some(JSON.parse(text))
    } catch {
      parsed = Option.none() // answered after authentication, as the platform's own parse is
    }
    const problem = Option.isSome(parsed) ? inspectJson(parsed.value) : undefined
    if (problem !== undefined) return Effect.succeed(answerEnvelope(jsonProblemEnvelope(problem), requestId))
    if (token === "") return Effect.fail(missingToken)
    // Decoded now, answered in its turn: the route's limit is counted (with the session check, one
    // round trip) only for a payload that decodes, as its handler only runs for one.
    const payload = Option.map(parsed, decodePayload)
    const decoded = Option.isSome(payload) && Either.isRight(payload.value)
    return Effect.flatMap(authenticate(token, decoded ? "videoMixerGenerate" : undefined), ({ also, decision, user }) => {
      const general = rateLimitHeaders(decision)
      if (!decision.allowed) return failureAnswer(Cause.fail(guard.refusal(decision, "general")), requestId, general)
      if (Option.isNone(payload)) return Effect.succeed(answerEnvelope(unreadableBody, requestId, general))
      if (Either.isLeft(payload.value)) {
        return HttpApiError.HttpApiDecodeError.refailParseError(payload.value.left).pipe(
          Effect.catchAllCause((cause) => failureAnswer(cause, requestId, general))
        )
      }
      // authenticate decides `also` whenever the general limit allowed the request
      if (also === undefined) return Effect.dieMessage("the route's limit was not decided")
      const headers = rateLimitHeaders(also)
      if (!also.allowed) return failureAnswer(Cause.fail(guard.refusal(also, "videoMixerGenerate")), requestId, headers)
      return mixer.generate(user.id, payload.value.right).pipe(
        Effect.map((accepted): LeanAnswer => ({ status: GENERATED_STATUS, headers, body: JSON.stringify(generatedBody(accepted)) })),
        Effect.catchAllCause((cause) => failureAnswer(cause, requestId, headers))
      )
    })
  }

  const route: LeanRoute = {
    method: "POST",
    path: "/api/apps/video-mixer/generate",
    json: {
      maxBytes: MAX_BYTES,
      accepts: (req) => {
        const header = req.headers["authorization"]
        return header !== undefined && BEARER_SCHEME.test(header)
      }
    },
    answer: (req, requestId, body) =>
      run(answer((req.headers["authorization"] ?? "").slice(7).trim(), body.toString("utf8"), requestId), requestId)
  }
  return route
})
