import { randomBytes, randomInt, randomUUID } from "node:crypto"
import { Queue } from "bullmq"
import Fastify, { type FastifyReply, type FastifyRequest, LogController } from "fastify"
import { Redis } from "ioredis"
import { jwtVerify } from "jose"
import pg from "pg"
import { SLIDING_WINDOW } from "../../src/layers/platform/RateLimiterRedis.js"

/**
 * The peer of `npm run bench:api`, written the way a user would pick instead of this project
 * (Fastify 5 + pg + ioredis + jose + BullMQ), doing the same work per request.
 * GET /api/credits/balance:
 * - verify the HS256 access token (jose, algorithm and issuer pinned);
 * - look the session up joined with its user (one Postgres query: not revoked, not expired);
 * - the general per-user limit as one sliding-window Lua script in Redis (the project's script);
 * - read the balance (a second Postgres query) and answer { success: true, data: { balance } };
 * - one access-log line per request (pino JSON to stdout, as the project writes).
 * POST /api/apps/video-mixer/generate (the write through the ledger): the same authentication and
 * general limit, then the route's own per-user limit (a second script), the body validated by a JSON
 * schema (Fastify's), and in one transaction: the caller's project locked, its videos and groups
 * read (the clip snapshot), the generation's advisory lock, the charge (the conditional balance update
 * and its ledger row in one statement, enterprise users charged 0), the generation row, and the job
 * added to a BullMQ queue; then the balance read and the generation answered in the web app's shape.
 * The same database, Redis and JWT secret as the project; its own Redis keys and queue prefix.
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

const queue = new Queue("video-mixer", {
  connection: { host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null },
  prefix: "lumiku-bench-peer-bull"
})

/** The caller, or an answer already sent (401 / 429). */
const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<string | undefined> => {
  const header = request.headers.authorization
  if (header === undefined || !header.startsWith("Bearer ")) return void reply.code(401).send(unauthorized)
  let userId: string, sessionId: string
  try {
    const { payload } = await jwtVerify(header.slice(7), key, { algorithms: ["HS256"], issuer: "lumiku" })
    if (typeof payload.sub !== "string" || typeof payload["sid"] !== "string") return void reply.code(401).send(unauthorized)
    userId = payload.sub
    sessionId = payload["sid"]
  } catch {
    return void reply.code(401).send(unauthorized)
  }
  const session = await pool.query(
    `SELECT u.id, u.email, u.role, u.tags, s.id AS session_id FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()`,
    [sessionId, userId]
  )
  if (session.rowCount === 0) return void reply.code(401).send(unauthorized)
  const member = `${Date.now()}-${randomBytes(6).toString("hex")}`
  const [allowed = 0, remaining = 0, resetMs = 0] = await slidingWindow(`rl:general:user:${userId}`, limit, windowMs, member)
  reply.header("RateLimit-Limit", limit).header("RateLimit-Remaining", remaining).header("RateLimit-Reset", Math.ceil(resetMs / 1000))
  if (allowed !== 1) return void reply.code(429).send({ success: false, error: "Too many requests", code: "RATE_LIMITED" })
  return userId
}

const speed = { type: "number", minimum: 0.5, maximum: 2 }
const generateBody = {
  type: "object",
  additionalProperties: false,
  required: ["projectId", "totalVideos", "settings"],
  properties: {
    projectId: { type: "string", format: "uuid" },
    totalVideos: { type: "integer", minimum: 1, maximum: 100 },
    settings: {
      type: "object",
      additionalProperties: false,
      required: [
        "enableOrderMixing", "enableDifferentStart", "enableGroupMixing", "groupMixingMode", "enableSpeedVariations", "speedMin",
        "speedMax", "metadataSource", "videoBitrate", "videoResolution", "frameRate", "aspectRatio", "durationType",
        "smartDistribution", "distributionMode", "audioOption"
      ],
      properties: {
        enableOrderMixing: { type: "boolean" },
        enableDifferentStart: { type: "boolean" },
        fixedStartVideoId: { type: "string" },
        enableGroupMixing: { type: "boolean" },
        groupMixingMode: { enum: ["sequential", "random"] },
        enableSpeedVariations: { type: "boolean" },
        speedMin: speed,
        speedMax: speed,
        metadataSource: { enum: ["capcut", "tiktok", "instagram", "youtube"] },
        videoBitrate: { enum: ["low", "medium", "high"] },
        videoResolution: { enum: ["480p", "720p", "1080p", "4k"] },
        frameRate: { enum: [24, 30, 60] },
        aspectRatio: { enum: ["9:16", "16:9", "1:1", "4:5"] },
        durationType: { enum: ["original", "fixed"] },
        fixedDuration: { type: "number", minimum: 1, maximum: 600 },
        smartDistribution: { type: "boolean" },
        distributionMode: { enum: ["proportional", "equal", "weighted"] },
        audioOption: { enum: ["keep", "mute"] }
      }
    }
  }
} as const

interface GenerateBody {
  readonly projectId: string
  readonly totalVideos: number
  readonly settings: Record<string, unknown> & { readonly videoResolution: string; readonly videoBitrate: string; readonly frameRate: number }
}

/** The old plugin's table (lumiku.md 3.2), as the project charges it. */
const costPerOutput = (s: Record<string, unknown>) =>
  1 + (s["enableOrderMixing"] ? 1 : 0) + (s["enableGroupMixing"] && s["groupMixingMode"] === "random" ? 2 : 0) +
  (s["enableSpeedVariations"] ? 1 : 0) + ({ "480p": 0, "720p": 2, "1080p": 5, "4k": 10 }[String(s["videoResolution"])] ?? 0) +
  (s["videoBitrate"] === "high" ? 2 : 0) + (s["frameRate"] === 60 ? 3 : 0) + (s["smartDistribution"] ? 1 : 0)

app.post("/api/apps/video-mixer/generate", { schema: { body: generateBody } }, async (request, reply) => {
  const userId = await authenticate(request, reply)
  if (userId === undefined) return reply
  const member = `${Date.now()}-${randomBytes(6).toString("hex")}`
  const [allowed = 0] = await slidingWindow(`rl:videoMixerGenerate:user:${userId}`, limit, windowMs, member)
  if (allowed !== 1) return reply.code(429).send({ success: false, error: "Too many requests", code: "RATE_LIMITED" })
  const body = request.body as GenerateBody
  if (Number(body.settings["speedMin"]) > Number(body.settings["speedMax"])) {
    return reply.code(400).send({ success: false, error: "speedMin must not exceed speedMax", code: "VALIDATION_ERROR" })
  }
  const cost = costPerOutput(body.settings) * body.totalVideos
  const id = randomUUID()
  const client = await pool.connect()
  try {
    await client.query("BEGIN")
    const project = await client.query("SELECT id FROM video_mixer_projects WHERE id = $1 AND user_id = $2 FOR UPDATE", [body.projectId, userId])
    if (project.rowCount === 0) {
      await client.query("ROLLBACK")
      return reply.code(404).send({ success: false, error: "No such project", code: "PROJECT_NOT_FOUND" })
    }
    const clips = await client.query(
      `SELECT v.id, v.group_id, v."order", u.storage_key, u.duration_seconds, u.width, u.height
       FROM video_mixer_videos v JOIN uploads u ON u.id = v.upload_id WHERE v.project_id = $1 ORDER BY v."order", v.created_at`,
      [body.projectId]
    )
    const groups = await client.query(`SELECT id, "order" FROM video_mixer_groups WHERE project_id = $1 ORDER BY "order", created_at`, [body.projectId])
    if (clips.rowCount === 0) {
      await client.query("ROLLBACK")
      return reply.code(400).send({ success: false, error: "The project has no videos", code: "VALIDATION_ERROR" })
    }
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [0x67656e, id])
    const charge = await client.query(
      `WITH moved AS (
         UPDATE users SET balance = balance - CASE WHEN 'enterprise_unlimited' = ANY(tags) THEN 0 ELSE $2::bigint END
         WHERE id = $1 AND (balance >= $2::bigint OR 'enterprise_unlimited' = ANY(tags))
         RETURNING balance, CASE WHEN 'enterprise_unlimited' = ANY(tags) THEN 0 ELSE $2::bigint END AS charged
       )
       INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, reference, idempotency_key, requested_amount)
       SELECT $1::uuid, -moved.charged, moved.balance, 'usage', $3, $4, $5, $2::bigint FROM moved
       RETURNING -delta AS charged`,
      [userId, cost, `Video Mixer: ${body.totalVideos} units`, `generation:${id}`, `generation:${id}`]
    )
    if (charge.rowCount === 0) {
      await client.query("ROLLBACK")
      return reply.code(402).send({ success: false, error: "Insufficient credits", code: "INSUFFICIENT_CREDITS" })
    }
    const settings = {
      ...body.settings,
      clips: clips.rows.map((c) => ({
        videoId: c.id,
        groupId: c.group_id,
        order: c.order,
        storageKey: c.storage_key,
        durationSeconds: c.duration_seconds ?? 0,
        width: c.width,
        height: c.height
      })),
      groups: groups.rows.map((g) => ({ groupId: g.id, order: g.order }))
    }
    const inserted = await client.query(
      `INSERT INTO generations (id, user_id, app, project_id, units_requested, credit_cost, charged, settings, seed)
       VALUES ($1, $2, 'video-mixer', $3, $4, $5, $6, $7::jsonb, $8) RETURNING *`,
      [id, userId, body.projectId, body.totalVideos, cost, charge.rows[0].charged, JSON.stringify(settings), randomInt(0, 2 ** 31)]
    )
    await queue.add("generation", { generationId: id, userId }, { jobId: id, attempts: 3, removeOnComplete: true })
    await client.query("COMMIT")
    // On the same connection: a second one from the pool while holding this one deadlocks at 50 callers over 10.
    const balance = await client.query("SELECT balance FROM users WHERE id = $1", [userId])
    const row = inserted.rows[0]
    const { clips: _clips, groups: _groups, ...flat } = settings
    return reply.code(201).send({
      success: true,
      generation: {
        id,
        projectId: row.project_id,
        status: row.status,
        progress: row.progress,
        totalVideos: row.units_requested,
        videosDelivered: row.units_delivered,
        creditUsed: Number(row.charged) - Number(row.refunded),
        createdAt: row.created_at.toISOString(),
        completedAt: null,
        outputPaths: null,
        errorMessage: null,
        fixedStartVideoId: null,
        fixedDuration: null,
        ...flat
      },
      creditUsed: Number(row.charged),
      creditBalance: Number(balance.rows[0].balance),
      message: `Generating ${body.totalVideos} ${body.totalVideos === 1 ? "video" : "videos"}`
    })
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined)
    throw error
  } finally {
    client.release()
  }
})

app.get("/api/credits/balance", async (request, reply) => {
  const userId = await authenticate(request, reply)
  if (userId === undefined) return reply
  const balance = await pool.query("SELECT balance FROM users WHERE id = $1", [userId])
  return { success: true, data: { balance: Number(balance.rows[0].balance) } }
})

app.get("/health/liveness", async () => ({ status: "ok" }))

const address = await app.listen({ port: 0, host: "127.0.0.1" })
process.stdout.write(JSON.stringify({ msg: "lumiku-backend listening", port: Number(new URL(address).port) }) + "\n")
process.on("SIGTERM", () => {
  // A quit racing the last commands can reject; the process ends either way (and writes its profile).
  void app.close().then(() => Promise.allSettled([pool.end(), redis.quit(), queue.close()])).finally(() => process.exit(0))
})
