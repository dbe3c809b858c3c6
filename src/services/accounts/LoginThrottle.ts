import { Duration, Effect, Metric } from "effect"
import { AppConfig, type AppConfigShape } from "../platform/AppConfig.js"
import { ExpiringMap } from "../platform/ExpiringMap.js"
import { rateLimitStoreFailures } from "../platform/RateLimiter.js"
import { Redis, type RedisShape } from "../platform/Redis.js"

/** A password check that may go ahead; hand it back to `release` when the password was right. */
export interface LoginReservation {
  readonly locked: false
  readonly email: string
  readonly address: string
  readonly store: "redis" | "local"
}

export interface LoginLock {
  readonly locked: true
  /** Seconds until the lock lifts. */
  readonly retryAfterSeconds: number
}

/** Like the rate limiter: past this the shared store counts as failed and the local one decides. */
const STORE_BUDGET = Duration.millis(150)
const LOCAL_MAX_KEYS = 10_000

/**
 * Reserves one password check: refuses when either counter is at its limit, otherwise counts it
 * (both counters, expiring with the window from the first count). Returns {reserved, pttl}.
 */
const RESERVE = `
local maxEmail = tonumber(ARGV[1])
local maxAddress = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local email = tonumber(redis.call('GET', KEYS[1]) or '0')
local address = tonumber(redis.call('GET', KEYS[2]) or '0')
if email >= maxEmail or address >= maxAddress then
  local ttl = 0
  if email >= maxEmail then ttl = math.max(ttl, redis.call('PTTL', KEYS[1])) end
  if address >= maxAddress then ttl = math.max(ttl, redis.call('PTTL', KEYS[2])) end
  return {0, ttl}
end
for i = 1, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], window, 'NX')
end
return {1, 0}
`

/** Gives a reservation back (a successful check), never below zero. */
const RELEASE = `
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
`

/**
 * The login lockout, per email and per client address: "password checks in flight + failed ones"
 * within the window. A check is reserved atomically BEFORE the password is verified, so N
 * concurrent guesses verify at most `maxFailuresPerEmail` passwords; a failed check keeps its
 * reservation (it is the failure count), a successful one gives it back. Counted whether or not the
 * email exists, so a lock says nothing about accounts. A locked email stays locked for a correct
 * password too (that is what a lockout means; the user waits or resets the password).
 *
 * With Redis unreachable the same policy runs on in-process counters (bounded, see ExpiringMap),
 * counted as `rate_limit_store_failures_total{decision="local", policy="login-lockout"}` and logged.
 * Owns no resource: the in-process counters are plain memory.
 */
export const makeLoginThrottle = (redis: RedisShape, config: AppConfigShape["auth"]["lockout"]) => {
  const windowMs = Duration.toMillis(config.window)
  const emailKey = (email: string) => `login:fail:email:${email}`
  const addressKey = (address: string) => `login:fail:addr:${address}`
  redis.client.defineCommand("lumikuLoginReserve", { numberOfKeys: 2, lua: RESERVE })
  redis.client.defineCommand("lumikuLoginRelease", { numberOfKeys: 2, lua: RELEASE })
  // defineCommand adds the methods at runtime; ioredis' types cannot know about them.
  const client = redis.client as unknown as Record<string, (...args: Array<string | number>) => Promise<Array<number>>>
  const run = (name: string, ...args: Array<string | number>) => client[name]!(...args)

  const local = new ExpiringMap<number>(LOCAL_MAX_KEYS)
  const localReserve = (email: string, address: string): LoginReservation | LoginLock => {
    const now = Date.now()
    const e = local.get(emailKey(email), now)
    const a = local.get(addressKey(address), now)
    const emailLocked = (e?.value ?? 0) >= config.maxFailuresPerEmail
    const addressLocked = (a?.value ?? 0) >= config.maxFailuresPerAddress
    if (emailLocked || addressLocked) {
      const until = Math.max(emailLocked ? e!.expiresAt : 0, addressLocked ? a!.expiresAt : 0)
      return { locked: true, retryAfterSeconds: Math.max(1, Math.ceil((until - now) / 1000)) }
    }
    local.set(emailKey(email), (e?.value ?? 0) + 1, e?.expiresAt ?? now + windowMs, now)
    local.set(addressKey(address), (a?.value ?? 0) + 1, a?.expiresAt ?? now + windowMs, now)
    return { locked: false, email, address, store: "local" }
  }
  const localRelease = (email: string, address: string) => {
    const now = Date.now()
    for (const key of [emailKey(email), addressKey(address)]) {
      const entry = local.get(key, now)
      if (entry !== undefined && entry.value > 0) local.set(key, entry.value - 1, entry.expiresAt, now)
    }
  }

  const reserve = (email: string, address: string): Effect.Effect<LoginReservation | LoginLock> =>
    redis.use("login reserve", () =>
      run("lumikuLoginReserve", emailKey(email), addressKey(address), config.maxFailuresPerEmail, config.maxFailuresPerAddress, windowMs)
    ).pipe(
      Effect.timeout(STORE_BUDGET),
      Effect.map(([reserved = 0, ttl = 0]): LoginReservation | LoginLock =>
        reserved === 1
          ? { locked: false, email, address, store: "redis" }
          : { locked: true, retryAfterSeconds: Math.max(1, Math.ceil(ttl / 1000)) }
      ),
      Effect.catchAll((error) =>
        Effect.gen(function*() {
          yield* Metric.update(Metric.tagged(Metric.tagged(rateLimitStoreFailures, "decision", "local"), "policy", "login-lockout"), 1)
          yield* Effect.logWarning("login lockout store unavailable; counting in this process", { error: error.message })
          return localReserve(email, address)
        })
      )
    )

  const release = (reservation: LoginReservation): Effect.Effect<void> =>
    reservation.store === "local"
      ? Effect.sync(() => localRelease(reservation.email, reservation.address))
      : redis.use("login release", () => run("lumikuLoginRelease", emailKey(reservation.email), addressKey(reservation.address))).pipe(
        Effect.timeout(STORE_BUDGET),
        Effect.ignore
      )

  return { reserve, release }
}

/** The login lockout over the app's Redis, with the configured limits (see makeLoginThrottle). */
export class LoginThrottle extends Effect.Service<LoginThrottle>()("app/LoginThrottle", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    return makeLoginThrottle(yield* Redis, config.auth.lockout)
  })
}) {}
