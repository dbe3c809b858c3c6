import { randomBytes, scrypt, timingSafeEqual } from "node:crypto"
import { availableParallelism } from "node:os"
import { Effect } from "effect"

/**
 * Password hashing with scrypt from node:crypto (memory-hard: N=2^15, r=8 is 32 MiB per hash), run
 * on libuv's thread pool so the event loop never blocks. Stored as `scrypt$N$r$p$salt$hash`.
 */

/**
 * How many derivations may run at once. libuv's pool (UV_THREADPOOL_SIZE, read by libuv itself
 * from the process environment, 4 by default) also serves fs, dns.lookup and zlib; unbounded,
 * 16 concurrent logins fill it and every file operation (uploads, the storage health probe) queues
 * behind ~100 ms hashes. So hashing takes at most pool - 2 threads and leaves one CPU to the event
 * loop (at least 1 permit): more would not hash faster, only starve the loop and hold more 32 MiB
 * buffers. Further logins wait in a FIFO semaphore: 50 at once cost a few seconds, well inside the
 * request timeout.
 *
 * A semaphore rather than a worker_threads pool: scrypt already runs off the event loop, so only
 * the number in flight needs bounding, with no extra threads or message passing.
 */
const UV_THREADPOOL_SIZE = Number(process.env["UV_THREADPOOL_SIZE"]) || 4
export const HASH_CONCURRENCY = Math.max(1, Math.min(UV_THREADPOOL_SIZE - 2, availableParallelism() - 1))
const hashPermits = Effect.unsafeMakeSemaphore(HASH_CONCURRENCY)
const N = 32768
const R = 8
const P = 1
const KEY_LENGTH = 32
const MAX_MEMORY = 64 * 1024 * 1024

// Uninterruptible once started: an interrupted request (client gone) keeps its permit until the
// thread-pool work it started has finished, so the bound holds.
const derive = (password: string, salt: Buffer, n: number, r: number, p: number) =>
  hashPermits.withPermits(1)(Effect.uninterruptible(Effect.async<Buffer, Error>((resume) => {
    scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, { N: n, r, p, maxmem: MAX_MEMORY }, (error, key) =>
      resume(error === null ? Effect.succeed(key) : Effect.fail(error)))
  })))

export const hashPassword = (password: string) =>
  Effect.suspend(() => {
    const salt = randomBytes(16)
    return Effect.map(derive(password, salt, N, R, P), (key) =>
      `scrypt$${N}$${R}$${P}$${salt.toString("base64url")}$${key.toString("base64url")}`)
  }).pipe(Effect.orDie)

/** A hash of a random password: verifying against it costs the same as against a real one. */
export const DUMMY_HASH = Effect.runSync(Effect.cached(hashPassword(randomBytes(18).toString("base64url")))).pipe(Effect.orDie)

export const verifyPassword = (password: string, stored: string): Effect.Effect<boolean> => {
  const [scheme, n, r, p, salt, hash] = stored.split("$")
  if (scheme !== "scrypt" || salt === undefined || hash === undefined) return Effect.succeed(false)
  const expected = Buffer.from(hash, "base64url")
  return derive(password, Buffer.from(salt, "base64url"), Number(n), Number(r), Number(p)).pipe(
    Effect.map((key) => key.length === expected.length && timingSafeEqual(key, expected)),
    Effect.orElseSucceed(() => false)
  )
}

/** The one password rule: 12-128 characters with at least 3 of lower case, upper case, digits, symbols. */
export const passwordProblem = (password: string): string | undefined => {
  const length = [...password].length
  if (length < 12 || length > 128) return "Password must be 12 to 128 characters long"
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length
  if (classes < 3) return "Password must use at least 3 of: lower-case letters, upper-case letters, digits, symbols"
  return undefined
}
