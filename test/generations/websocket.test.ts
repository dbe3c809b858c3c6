import * as net from "node:net"
import { Context, Deferred, Effect } from "effect"
import { Redis as IORedis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { OpenSockets } from "../../src/http/platform/OpenSockets.js"
import { eventOfMessage } from "../../src/services/generations/GenerationEvents.js"
import { Generations } from "../../src/services/generations/Generations.js"
import { progressChannel } from "../../src/services/jobs/queueNames.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { type InProcessApp, type InProcessServices, startApp } from "../support/inProcessApp.js"
import { eventually } from "../support/jobHarness.js"
import { fixtureApp, fixtureHandler, held } from "./fixtureApp.js"

const PASSWORD = "Correct-Horse-42"
const ALLOWED_ORIGIN = "https://app.lumiku.com"
const env = {
  CORS_ORIGIN: ALLOWED_ORIGIN,
  WS_AUTH_TIMEOUT: "400",
  RATE_LIMIT_REGISTER: "1000 per 1 minute",
  RATE_LIMIT_LOGIN: "1000 per 1 minute",
  RATE_LIMIT_GENERAL: "10000 per 1 minute",
  // 200 sockets of one test connect at once from 127.0.0.1
  WS_MAX_PENDING_PER_CLIENT: "500"
}

type Message = Record<string, unknown>

/** A client socket with everything it received and how it was closed. */
interface Client {
  readonly ws: WebSocket
  readonly messages: Array<Message>
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>
}

/** Closes from the client side and waits for the handshake, so the server has let go of the socket. */
const hangUp = (client: Client) => {
  client.ws.close()
  return client.closed
}

const wsUrl = (app: InProcessApp) => app.url("/api/ws").replace(/^http/, "ws")

const connect = (app: InProcessApp, headers: Record<string, string> = {}): Promise<Client> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(app), { headers })
    const messages: Array<Message> = []
    const closed = new Promise<{ code: number; reason: string }>((done) =>
      ws.on("close", (code, reason) => done({ code, reason: reason.toString() })))
    ws.on("message", (data) => messages.push(JSON.parse(data.toString()) as Message))
    ws.once("open", () => resolve({ ws, messages, closed }))
    ws.once("error", reject)
  })

/** Connects and authenticates; resolves once the server says it is listening for the user's events. */
const connectAs = async (app: InProcessApp, token: string, headers: Record<string, string> = {}) => {
  const client = await connect(app, headers)
  client.ws.send(JSON.stringify({ type: "auth", token }))
  await eventually(async () => client.messages.find((m) => m["type"] === "ready"), 5_000, "socket ready")
  return client
}

/** An upgrade request with the given handshake headers, over a bare TCP connection; resolves with the HTTP answer. */
const rawUpgrade = (app: InProcessApp, headers: Record<string, string>) =>
  new Promise<{ status: number; body: Message; raw: string }>((resolve, reject) => {
    const url = new URL(app.url("/api/ws"))
    const socket = net.connect(Number(url.port), url.hostname)
    let raw = ""
    socket.on("data", (chunk: Buffer) => (raw += chunk.toString()))
    socket.on("error", reject)
    socket.on("close", () => {
      const [head = "", body = ""] = raw.split("\r\n\r\n")
      try {
        resolve({ status: Number(head.split(" ")[1]), body: JSON.parse(body) as Message, raw })
      } catch {
        reject(new Error(`not a JSON answer: ${raw}`))
      }
    })
    const lines = Object.entries({ host: url.host, connection: "Upgrade", upgrade: "websocket", ...headers }).map(([k, v]) => `${k}: ${v}`)
    socket.write(`GET /api/ws HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`)
  })

describe("live progress over WebSocket", () => {
  let app: InProcessApp
  let redis: IORedis
  const run = <A, E>(effect: Effect.Effect<A, E, InProcessServices>) => Effect.runPromise(Effect.provide(effect, app.context))
  const newUser = async (target: InProcessApp = app) => {
    const r = await call(target, "POST", "/api/auth/register", { email: freshEmail("ws"), password: PASSWORD })
    expect(r.status).toBe(201)
    return { id: r.body["data"].user.id as string, token: r.body["data"].token as string }
  }
  const create = (userId: string, settings: Record<string, unknown>, units = 3) =>
    run(Effect.flatMap(Generations, (g) => g.create({ userId, app: fixtureApp.appId, units, cost: 30, settings })))
  const release = (id: string) =>
    eventually(async () => held.get(id), 10_000, "render started").then((gate) => Effect.runPromise(Deferred.succeed(gate, undefined)))

  beforeAll(async () => {
    app = await startApp(testEnv(env), { jobHandlers: [fixtureHandler], apps: [fixtureApp] })
    const config = await run(AppConfig)
    redis = new IORedis({ host: config.redis.host, port: config.redis.port, maxRetriesPerRequest: null })
  })
  afterAll(async () => {
    redis?.disconnect()
    await app?.close()
  })

  it("a client receives its own progress and completion, and never another user's", async () => {
    const alice = await newUser()
    const bob = await newUser()
    const aliceSocket = await connectAs(app, alice.token)
    const bobSocket = await connectAs(app, bob.token)
    const aliceGen = await create(alice.id, { mode: "hold" })
    const bobGen = await create(bob.id, { mode: "hold" })
    await release(aliceGen.id)
    await release(bobGen.id)

    const completedOf = (client: Client, id: string) =>
      eventually(async () => client.messages.find((m) => m["type"] === "completed" && m["generationId"] === id), 10_000, "completed event")
    expect(await completedOf(aliceSocket, aliceGen.id)).toMatchObject({
      status: "completed", progress: 100, unitsRequested: 3, unitsDelivered: 3, refunded: 0, errorCode: null
    })
    await completedOf(bobSocket, bobGen.id)
    const progressOf = (client: Client, id: string) =>
      client.messages.filter((m) => m["type"] === "progress" && m["generationId"] === id).map((m) => m["progress"])
    expect(progressOf(aliceSocket, aliceGen.id)).toEqual([33, 67, 100])
    expect(progressOf(bobSocket, bobGen.id)).toEqual([33, 67, 100])
    // Each socket heard only of its own user's generation.
    const foreign = (client: Client, own: string) => client.messages.filter((m) => "generationId" in m && m["generationId"] !== own)
    expect(foreign(aliceSocket, aliceGen.id)).toEqual([])
    expect(foreign(bobSocket, bobGen.id)).toEqual([])
    await hangUp(aliceSocket)
    await hangUp(bobSocket)
  })

  it("pushes failed and cancelled settlements with the reason the user is shown", async () => {
    const user = await newUser()
    const socket = await connectAs(app, user.token)
    const failing = await create(user.id, { mode: "fail" })
    const failed = await eventually(
      async () => socket.messages.find((m) => m["type"] === "failed" && m["generationId"] === failing.id), 10_000, "failed event")
    expect(failed).toMatchObject({ status: "failed", unitsDelivered: 0, refunded: 30, errorCode: "GENERATION_FAILED" })

    const cancelling = await create(user.id, { mode: "hold" })
    await eventually(async () => held.get(cancelling.id), 10_000, "render started")
    await run(Effect.flatMap(Generations, (g) => g.cancel(cancelling.id, user.id)))
    const cancelled = await eventually(
      async () => socket.messages.find((m) => m["type"] === "cancelled" && m["generationId"] === cancelling.id), 10_000, "cancelled event")
    expect(cancelled).toMatchObject({ status: "cancelled", refunded: 30, errorCode: "CANCELLED" })
    await hangUp(socket)
  })

  it("GET /api/generations carries a running generation's status and progress (what a reconnecting client reads)", async () => {
    const user = await newUser()
    const running = await create(user.id, { mode: "hold" })
    await eventually(async () => held.get(running.id), 10_000, "render started")
    await run(Effect.flatMap(Generations, (g) => g.progress(running.id, 40, 1)))
    const listed = await call(app, "GET", "/api/generations", undefined, bearer(user.token))
    expect(listed.body["generations"]).toEqual([expect.objectContaining({ id: running.id, status: "processing", progress: 40 })])
    await release(running.id)
  })

  it("answers ping with pong once authenticated", async () => {
    const user = await newUser()
    const socket = await connectAs(app, user.token)
    socket.ws.send(JSON.stringify({ type: "ping" }))
    await eventually(async () => socket.messages.find((m) => m["type"] === "pong"), 5_000, "pong")
    await hangUp(socket)
  })

  it("closes a socket that does not authenticate within WS_AUTH_TIMEOUT (4408)", async () => {
    const started = Date.now()
    const socket = await connect(app)
    const closed = await socket.closed
    expect(closed).toEqual({ code: 4408, reason: "authentication timeout" })
    expect(Date.now() - started).toBeGreaterThanOrEqual(350)
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it("closes a socket whose token is not valid (4401), after saying why", async () => {
    const socket = await connect(app)
    socket.ws.send(JSON.stringify({ type: "auth", token: "not-a-token" }))
    expect((await socket.closed).code).toBe(4401)
    expect(socket.messages).toEqual([{ type: "error", code: "UNAUTHORIZED", message: expect.any(String) }])
  })

  it("closes a socket whose first message is not an auth message (4400)", async () => {
    const socket = await connect(app)
    socket.ws.send("hello")
    expect((await socket.closed).code).toBe(4400)
    expect(socket.messages[0]).toMatchObject({ type: "error", code: "BAD_MESSAGE" })
  })

  it("refuses an Origin the CORS policy does not allow, before the upgrade, with the error body", async () => {
    const refusal = await new Promise<{ status: number; body: Message }>((resolve, reject) => {
      const ws = new WebSocket(wsUrl(app), { headers: { origin: "https://evil.example" } })
      ws.on("unexpected-response", (_request, response) => {
        let body = ""
        response.on("data", (chunk: Buffer) => (body += chunk.toString()))
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(body) as Message }))
      })
      ws.on("open", () => reject(new Error("the socket opened")))
    })
    expect(refusal.status).toBe(403)
    expect(refusal.body).toMatchObject({ success: false, code: "FORBIDDEN", requestId: expect.any(String) })

    const user = await newUser()
    const allowed = await connectAs(app, user.token, { origin: ALLOWED_ORIGIN })
    await hangUp(allowed)
  })

  it("answers a plain GET with 426 in the error body", async () => {
    const r = await call(app, "GET", "/api/ws")
    expect(r.status).toBe(426)
    expect(r.body).toMatchObject({ success: false, code: "UPGRADE_REQUIRED" })
  })

  it("answers a broken handshake 400 in the error body, and keeps nothing open for it", async () => {
    const sockets = Context.get(app.context, OpenSockets)
    for (const headers of [
      { "sec-websocket-version": "13" }, // no key
      { "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "99" },
      { "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13", "sec-websocket-protocol": "a b" }
    ]) {
      const answer = await rawUpgrade(app, headers)
      expect(answer.status).toBe(400)
      expect(answer.body).toMatchObject({ success: false, code: "BAD_REQUEST", requestId: expect.any(String) })
    }
    await eventually(async () => (sockets.count() === 0 ? true : undefined), 2_000, "no socket left open")
  })

  it("200 idle sockets use one Redis subscriber", async () => {
    const config = await run(AppConfig)
    const users = await Promise.all(Array.from({ length: 20 }, () => newUser()))
    const sockets = await Promise.all(Array.from({ length: 200 }, (_, i) => connectAs(app, users[i % 20]!.token)))
    const channels = users.map((u) => progressChannel(config.redis.keyPrefix, u.id))
    // Each user's channel has one subscriber (the process' own), not one per socket (10 each).
    const numsub = (await redis.pubsub("NUMSUB", ...channels)) as Array<string | number>
    expect(numsub.filter((_, i) => i % 2 === 1).map(Number)).toEqual(channels.map(() => 1))
    // ...and it is one connection, subscribed to all 20.
    const clients = ((await redis.client("LIST")) as string).split("\n").filter((line) => / sub=20 /.test(line))
    expect(clients.filter((line) => line.includes("name=lumiku:bull:generation-events "))).toHaveLength(1)

    // The last socket of a user gone, the process stops listening to that user.
    await Promise.all(sockets.filter((_, i) => i % 20 === 0).map(hangUp))
    await eventually(async () => {
      const after = (await redis.pubsub("NUMSUB", channels[0]!)) as Array<string | number>
      return Number(after[1]) === 0 ? true : undefined
    }, 5_000, "channel unsubscribed")
    await Promise.all(sockets.map(hangUp))
  })
})

describe("what one client may hold and send", () => {
  let app: InProcessApp
  const newUser = async () => {
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("ws"), password: PASSWORD })
    expect(r.status).toBe(201)
    return r.body["data"].token as string
  }
  beforeAll(async () => {
    app = await startApp(testEnv({ ...env, WS_AUTH_TIMEOUT: "3 seconds", WS_MAX_PENDING_PER_CLIENT: "3", WS_MAX_SOCKETS_PER_USER: "2" }))
  })
  afterAll(() => app?.close())
  const sockets = () => Context.get(app.context, OpenSockets)

  it("a 1 MiB message before authenticating drops the connection at the pre-authentication budget", async () => {
    const client = await connect(app)
    client.ws.send(Buffer.alloc(1024 * 1024, 0x61))
    const closed = await client.closed
    expect(closed.code).toBe(1006) // the TCP connection was destroyed: no close frame
    await eventually(async () => (sockets().count() === 0 ? true : undefined), 2_000, "socket released")
    // ...and the server goes on serving sockets.
    const next = await connectAs(app, await newUser())
    await hangUp(next)
  })

  it("an authenticated socket that floods past its budget is dropped; pings within it are answered", async () => {
    const client = await connectAs(app, await newUser())
    client.ws.send("ping")
    await eventually(async () => client.messages.find((m) => m["type"] === "pong"), 2_000, "pong")
    for (let i = 0; i < 16; i++) client.ws.send(Buffer.alloc(8_000, 0x62))
    expect((await client.closed).code).toBe(1006)
  })

  it("sockets waiting to authenticate are capped per address: one more is refused 429 before the upgrade", async () => {
    const waiting = await Promise.all([connect(app), connect(app), connect(app)])
    expect(sockets().pendingFrom("127.0.0.1")).toBe(3)
    const refused = await rawUpgrade(app, { "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" })
    expect(refused.status).toBe(429)
    expect(refused.body).toMatchObject({ success: false, code: "RATE_LIMITED", limit: 3 })
    // Authenticating frees the place.
    waiting[0]!.ws.send(JSON.stringify({ type: "auth", token: await newUser() }))
    await eventually(async () => waiting[0]!.messages.find((m) => m["type"] === "ready"), 5_000, "ready")
    expect(sockets().pendingFrom("127.0.0.1")).toBe(2)
    const admitted = await connect(app)
    await Promise.all([...waiting, admitted].map(hangUp))
    expect(sockets().pendingFrom("127.0.0.1")).toBe(0)
  })

  it("a user's sockets are capped: the one over WS_MAX_SOCKETS_PER_USER is closed 4429 after saying why", async () => {
    const token = await newUser()
    const first = await connectAs(app, token)
    const second = await connectAs(app, token)
    const third = await connect(app)
    third.ws.send(JSON.stringify({ type: "auth", token }))
    expect((await third.closed).code).toBe(4429)
    expect(third.messages).toContainEqual(expect.objectContaining({ type: "error", code: "TOO_MANY_SOCKETS" }))
    await hangUp(first)
    const again = await connectAs(app, token)
    await Promise.all([second, again].map(hangUp))
  })
})

describe("sockets at shutdown", () => {
  it("are closed with 1001 inside the bounded shutdown", async () => {
    const app = await startApp(testEnv(env), { jobHandlers: [fixtureHandler], apps: [fixtureApp] })
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("ws"), password: PASSWORD })
    const token = r.body["data"].token as string
    const sockets = await Promise.all(Array.from({ length: 5 }, () => connectAs(app, token)))
    const started = Date.now()
    await app.close()
    const closes = await Promise.all(sockets.map((s) => s.closed))
    expect(closes.map((c) => c.code)).toEqual([1001, 1001, 1001, 1001, 1001])
    expect(closes[0]!.reason).toBe("server shutting down")
    expect(Date.now() - started).toBeLessThan(2_000)
  })
})

describe("a socket that never answers the close handshake", () => {
  it("does not hold the shutdown: its connection is destroyed at the stage's bound", async () => {
    const app = await startApp(testEnv(env), { jobHandlers: [fixtureHandler], apps: [fixtureApp] })
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("ws"), password: PASSWORD })
    const stuck = await connectAs(app, r.body["data"].token as string)
    // `_socket` is ws' own (untyped) TCP socket: paused, the client never reads the server's close frame.
    const raw = (stuck.ws as unknown as { _socket: { pause: () => void; resume: () => void } })._socket
    raw.pause()
    const started = Date.now()
    await app.close()
    const elapsed = Date.now() - started
    raw.resume()
    await stuck.closed
    // The 2 s bound of http.sockets, not ws' 30 s close timeout.
    expect(elapsed).toBeGreaterThanOrEqual(1_900)
    expect(elapsed).toBeLessThan(5_000)
  })
})

describe("channel messages", () => {
  it("turn into socket events; job progress naming no generation is none", () => {
    expect(eventOfMessage(JSON.stringify({ type: "progress", queue: "q", jobId: "g1", generationId: "g1", percent: 66.6, delivered: 2 })))
      .toEqual({ type: "progress", generationId: "g1", progress: 66, delivered: 2 })
    expect(eventOfMessage(JSON.stringify({ type: "progress", queue: "q", jobId: "j1", percent: 50 }))).toBeUndefined()
    expect(eventOfMessage("not json")).toBeUndefined()
  })
})
