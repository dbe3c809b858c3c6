import { Duration, Either, Option } from "effect"
import {
  type PolicyName,
  policyNames,
  rateLimitPolicies,
  type RateLimitSetting
} from "../../../services/platform/rateLimitPolicies.js"
import { section } from "./section.js"
import { integer, mapVariable, parsed, type Variable } from "./variable.js"

/** "5 per 15 minutes" (or "5/15 minutes"); the window is at least a second. */
const parseRateLimit = (raw: string): Either.Either<RateLimitSetting, ReadonlyArray<string>> => {
  const match = /^\s*(\d+)\s*(?:per|\/)\s*(.+)$/.exec(raw)
  const window = match === null ? Option.none() : Duration.decodeUnknown(match[2]!.trim())
  return match !== null && Option.isSome(window) && Number(match[1]) >= 1 && Duration.toMillis(window.value) >= 1000
    ? Either.right({ limit: Number(match[1]), window: window.value })
    : Either.left([`expected "<n> per <duration>", such as "5 per 15 minutes"`])
}

/** RATE_LIMIT_<POLICY>, the policy name in upper snake case (projectCreate: RATE_LIMIT_PROJECT_CREATE). */
const variableName = (name: PolicyName) => `RATE_LIMIT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`

/** The health policy keeps its per-minute variable, so its window is fixed at one minute. */
const healthPerMinute = mapVariable(
  integer({
    name: "HEALTH_RATE_LIMIT_PER_MINUTE",
    min: 1,
    max: 100_000,
    default: rateLimitPolicies.health.limit satisfies number,
    description: `${rateLimitPolicies.health.description} (requests per minute)`
  }),
  (limit): RateLimitSetting => ({ limit, window: Duration.decode(rateLimitPolicies.health.window satisfies "1 minute") })
)

const windowed = (name: PolicyName): Variable<RateLimitSetting> => {
  const policy = rateLimitPolicies[name]
  return parsed({
    name: variableName(name),
    default: `${policy.limit} per ${policy.window}`,
    accepts: "<n> per <duration>",
    description: policy.description,
    parse: parseRateLimit
  })
}

// fromEntries cannot know its keys: the cast restates that there is one variable per policy name.
const variables = Object.fromEntries(
  policyNames.map((name) => [name, name === "health" ? healthPerMinute : windowed(name)])
) as { readonly [K in PolicyName]: Variable<RateLimitSetting> }

/** One variable per policy of services/platform/rateLimitPolicies.ts. */
export const rateLimitsSection = section("Rate limits", variables, (v) => v)
