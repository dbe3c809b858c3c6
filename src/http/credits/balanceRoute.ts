import { Cause, Effect } from "effect"
import { Ledger } from "../../services/credits/Ledger.js"
import { makeAuthenticate, missingToken } from "../accounts/Authentication.js"
import { BEARER_SCHEME } from "../platform/bearer.js"
import { failureAnswer, type LeanAnswer, type LeanRoute, makeLeanRunner } from "../platform/leanRoutes.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"
import { rateLimitHeaders } from "../platform/rateLimitHeaders.js"

/**
 * GET /api/credits/balance on the lean path (platform/leanRoutes.ts): the web app polls it, and it
 * is the hottest authenticated route. The same work and answers as the HttpApi route
 * (CreditsHandlers.ts behind Authentication): the bearer token, the session (mirrored or from
 * Postgres), the general per-user limit with its RateLimit-* headers (also on its 429), the balance,
 * and the one error body; without the router and the middleware chain, whose fibers and wrappers
 * were most of this route's cost (see the README's Performance section).
 */
export const balanceRoute = Effect.gen(function*() {
  const authenticate = yield* makeAuthenticate
  const guard = yield* RateLimitGuard
  const ledger = yield* Ledger
  const run = makeLeanRunner(yield* Effect.runtime<never>())

  const answer = (token: string, requestId: string): Effect.Effect<LeanAnswer, unknown> =>
    Effect.flatMap(authenticate(token), ({ decision, user }) => {
      const headers = rateLimitHeaders(decision)
      if (!decision.allowed) return failureAnswer(Cause.fail(guard.refusal(decision, "general")), requestId, headers)
      return ledger.balance(user.id).pipe(
        Effect.map((balance): LeanAnswer => ({ status: 200, headers, body: `{"success":true,"data":{"balance":${balance}}}` })),
        // A database failure answers 500 and is logged, as the HttpApi handler's defect (orDie) is.
        Effect.catchAllCause((cause) => failureAnswer(cause, requestId, headers))
      )
    })

  const route: LeanRoute = {
    method: "GET",
    path: "/api/credits/balance",
    answer: (req, requestId) => {
      const header = req.headers["authorization"]
      const token = header !== undefined && BEARER_SCHEME.test(header) ? header.slice(7).trim() : ""
      return run(token === "" ? Effect.fail(missingToken) : answer(token, requestId), requestId)
    }
  }
  return route
})

