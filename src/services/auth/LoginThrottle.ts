import { Duration, Effect } from "effect"
import type { AppConfigShape } from "../AppConfig.js"
import type { RedisShape } from "../Redis.js"

export interface LoginLock {
  readonly locked: boolean
  /** Seconds until the lock lifts (when locked). */
  readonly retryAfterSeconds: number
}

/**
 * Failed-login counters in Redis, per email and per client address, each expiring with its window.
 * Both are counted whether or not the email exists, so a lock says nothing about accounts.
 */
export const makeLoginThrottle = (redis: RedisShape, config: AppConfigShape["auth"]["lockout"]) => {
  const windowMs = Duration.toMillis(config.window)
  const emailKey = (email: string) => `login:fail:email:${email}`
  const addressKey = (address: string) => `login:fail:addr:${address}`

  const check = (email: string, address: string): Effect.Effect<LoginLock> =>
    redis.use("login lock check", (c) =>
      c.multi().get(emailKey(email)).pttl(emailKey(email)).get(addressKey(address)).pttl(addressKey(address)).exec()
    ).pipe(
      Effect.map((replies) => {
        const value = (i: number) => Number(replies?.[i]?.[1] ?? 0)
        const emailLocked = value(0) >= config.maxFailuresPerEmail
        const addressLocked = value(2) >= config.maxFailuresPerAddress
        const ttl = Math.max(emailLocked ? value(1) : 0, addressLocked ? value(3) : 0)
        return { locked: emailLocked || addressLocked, retryAfterSeconds: Math.max(1, Math.ceil(ttl / 1000)) }
      }),
      // With Redis down the lock cannot be read; login (a cheap, rate-limited path) stays open.
      Effect.catchAll((error) => Effect.logWarning("login lock unavailable", { error: error.message }).pipe(Effect.as({ locked: false, retryAfterSeconds: 0 })))
    )

  const recordFailure = (email: string, address: string) =>
    redis.use("login failure", (c) =>
      c.multi()
        .incr(emailKey(email)).pexpire(emailKey(email), windowMs, "NX")
        .incr(addressKey(address)).pexpire(addressKey(address), windowMs, "NX")
        .exec()
    ).pipe(Effect.ignore)

  const clear = (email: string) => redis.use("login success", (c) => c.del(emailKey(email))).pipe(Effect.ignore)

  return { check, recordFailure, clear }
}
