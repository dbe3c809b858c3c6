import { randomBytes } from "node:crypto"
import Fastify, { LogController } from "fastify"
import { Redis } from "ioredis"
import { jwtVerify } from "jose"
import pg from "pg"
import { SLIDING_WINDOW } from "../../src/layers/platform/RateLimiterRedis.js"

/**
 * The peer of `npm run bench:api`: GET /api/credits/balance written the way a user would pick
 * instead of this project (Fastify 5 + pg + ioredis + jose), doing the same work per request:
 * - verify the HS256 access token (jose, algorithm and issuer pinned);
 * - look the session up joined with its user (one Postgres query: not revoked, not expired);
 * - the general per-user limit as one sliding-window Lua script in Redis (the project's script);
 * - read the balance (a second Postgres query) and answer { success: true, data: { balance } };
 * - one access-log line per request (pino JSON to stdout, as the project writes).
 * The same database, Redis and JWT secret as the project; its own Redis keys.
 */
const env = process.env
const key = new TextEncoder().encode(env["JWT_SECRET"] ?? "")
const limit = Number(env["PEER_LIMIT"] ?? "1000000")
const windowMs = 60_000
const pool = new pg.Pool({ connectionString: env["DATABASE_URL"], max: Number(env["DB_POOL_SIZE"] ?? "10") })
const redis = new Redis({ host: "127.0.0.1", port: 6379, keyPrefix: "lumiku-bench-peer:" })
// A connection error is logged (ioredis reconnects); unhandled it would end the process.
redis.on("error", (error: Error) => process.stderr.write(`peer redis: ${error.message}\n`))

// The project's own sliding-window script: both servers count a request with the same code.
redis.defineCommand("slidingWindow", { numberOfKeys: 1, lua: SLIDING_WINDOW })
// defineCommand adds the method at runtime; ioredis' types cannot know about it.
const slidingWindow = (...args: Array<string | number>) =>
  (redis as unknown as Record<string, (...args: Array<string | number>) => Promise<Array<number>>>)["slidingWindow"]!(...args)

// Fastify's own two lines per request are off; one access line is written in onResponse, as the project does.
const app = Fastify({ logger: { level: "info" }, logController: new LogController({ disableRequestLogging: true }) })

const unauthorized = { success: false, error: "Unauthorized", message: "Unauthorized", code: "UNAUTHORIZED" }

app.addHook("onResponse", async (request, reply) => {
  request.log.info({ method: request.method, route: request.url, status: reply.statusCode, durationMs: reply.elapsedTime }, "request")
})

app.get("/api/credits/balance", async (request, reply) => {
  const header = request.headers.authorization
  if (header === undefined || !header.startsWith("Bearer ")) return reply.code(401).send(unauthorized)
  let userId: string, sessionId: string
  try {
    const { payload } = await jwtVerify(header.slice(7), key, { algorithms: ["HS256"], issuer: "lumiku" })
    if (typeof payload.sub !== "string" || typeof payload["sid"] !== "string") return reply.code(401).send(unauthorized)
    userId = payload.sub
    sessionId = payload["sid"]
  } catch {
    return reply.code(401).send(unauthorized)
  }
  const session = await pool.query(
    `SELECT u.id, u.email, u.role, u.tags, s.id AS session_id FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()`,
    [sessionId, userId]
  )
  if (session.rowCount === 0) return reply.code(401).send(unauthorized)
  const member = `${Date.now()}-${randomBytes(6).toString("hex")}`
  const [allowed = 0, remaining = 0, resetMs = 0] = await slidingWindow(`rl:general:user:${userId}`, limit, windowMs, member)
  reply.header("RateLimit-Limit", limit).header("RateLimit-Remaining", remaining).header("RateLimit-Reset", Math.ceil(resetMs / 1000))
  if (allowed !== 1) return reply.code(429).send({ success: false, error: "Too many requests", code: "RATE_LIMITED" })
  const balance = await pool.query("SELECT balance FROM users WHERE id = $1", [userId])
  return { success: true, data: { balance: Number(balance.rows[0].balance) } }
})

app.get("/health/liveness", async () => ({ status: "ok" }))

const address = await app.listen({ port: 0, host: "127.0.0.1" })
process.stdout.write(JSON.stringify({ msg: "lumiku-backend listening", port: Number(new URL(address).port) }) + "\n")
process.on("SIGTERM", () => {
  // A quit racing the last commands can reject; the process ends either way (and writes its profile).
  void app.close().then(() => Promise.allSettled([pool.end(), redis.quit()])).finally(() => process.exit(0))
})
