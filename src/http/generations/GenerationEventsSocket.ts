import { HttpApiBuilder, HttpApiSchema, HttpServerRequest, HttpServerResponse, Socket } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Deferred, Duration, Effect, Fiber, Option, Queue, Schema } from "effect"
import { Accounts } from "../../services/accounts/Accounts.js"
import { type GenerationEvent, GenerationEventHub } from "../../services/generations/GenerationEvents.js"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { makeClientAddressResolver } from "../../services/platform/clientAddress.js"
import { isAllowedOrigin } from "../../services/platform/CorsPolicy.js"
import { BadRequest, Forbidden, RateLimited } from "../platform/ApiError.js"
import { OpenSockets, type SocketTicket } from "../platform/OpenSockets.js"

export const SOCKET_PATH = "/api/ws"

/**
 * Close codes of the live-progress socket. 1001 is the server going away (shutdown); the 44xx codes
 * mirror the HTTP status of the same refusal, so a client can tell "log in again" (4401) from a
 * protocol mistake (4400) and a client too slow to authenticate (4408).
 */
export const CloseCodes = {
  goingAway: 1001,
  badMessage: 4400,
  unauthorized: 4401,
  authTimeout: 4408,
  tooManySockets: 4429
} as const

export class UpgradeRequired extends Schema.TaggedError<UpgradeRequired>()(
  "UpgradeRequired",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 426 })
) {}

/**
 * The handshake checks the WebSocket library makes. Made here first: when the library refuses a
 * handshake it answers plain text and never hands the socket back, so the request's fiber would
 * wait for ever; refused here, it is a 400 in the error body.
 */
const HANDSHAKE_KEY = /^[+/0-9A-Za-z]{22}==$/
const TOKEN_LIST = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*$/
const handshakeProblem = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
  if (!HANDSHAKE_KEY.test(headers["sec-websocket-key"] ?? "")) return "Sec-WebSocket-Key is missing or not valid"
  const version = headers["sec-websocket-version"]
  if (version !== "13" && version !== "8") return "Sec-WebSocket-Version must be 13"
  const protocols = headers["sec-websocket-protocol"]
  if (protocols !== undefined && !TOKEN_LIST.test(protocols)) return "Sec-WebSocket-Protocol is not a list of tokens"
  return undefined
}

/** A backstop for a handshake the library still drops (the client gone mid-way): the session ends. */
const HANDSHAKE_LIMIT = "10 seconds"

/** The one message a socket must send first. */
const AuthMessage = Schema.parseJson(Schema.Struct({ type: Schema.Literal("auth"), token: Schema.String }))
const decodeAuth = Schema.decodeUnknownOption(AuthMessage)
const isPing = (text: string) => text === "ping" || text === "{\"type\":\"ping\"}"

/** Frames longer than this are a protocol error: every message a client sends is a token or a ping. */
const MAX_MESSAGE_CHARS = 8_192
/** Events waiting for a slow client: past this the oldest are dropped (the GET endpoints have the truth). */
const EVENT_BACKLOG = 1_024

/**
 * One socket: waits for `{type:"auth", token}` (the access token, as in `Authorization: Bearer`)
 * within WS_AUTH_TIMEOUT, then relays the events of the user's own generations (the hub listens on
 * the user's channel only) until the client leaves or the server tells it to go away (1001).
 */
const session = (socket: Socket.Socket, ticket: SocketTicket) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const accounts = yield* Accounts
    const hub = yield* GenerationEventHub
    const write = yield* socket.writer
    const send = (message: object) => Effect.ignore(write(JSON.stringify(message)))
    const close = (code: number, reason: string) => Effect.ignore(write(new Socket.CloseEvent(code, reason)))
    const first = yield* Deferred.make<string>()
    let authenticated = false

    const onMessage = (data: string | Uint8Array) => {
      const text = typeof data === "string" ? data : new TextDecoder().decode(data)
      if (text.length > MAX_MESSAGE_CHARS) return close(CloseCodes.badMessage, "message too large")
      if (!authenticated) return Deferred.succeed(first, text)
      if (isPing(text)) return send({ type: "pong" })
    }

    const relay = Effect.gen(function*() {
      const received = yield* Effect.timeoutOption(Deferred.await(first), config.websocket.authTimeout)
      if (Option.isNone(received)) return yield* close(CloseCodes.authTimeout, "authentication timeout")
      const auth = decodeAuth(received.value)
      if (Option.isNone(auth)) {
        yield* send({ type: "error", code: "BAD_MESSAGE", message: "The first message must be {\"type\":\"auth\",\"token\":\"<access token>\"}" })
        return yield* close(CloseCodes.badMessage, "expected an auth message")
      }
      const user = yield* Effect.either(accounts.authenticate(auth.value.token))
      if (user._tag === "Left") {
        yield* send({ type: "error", code: "UNAUTHORIZED", message: user.left.message })
        return yield* close(CloseCodes.unauthorized, "unauthorized")
      }
      if (!ticket.authenticated(user.right.id)) {
        yield* send({ type: "error", code: "TOO_MANY_SOCKETS", message: `At most ${config.websocket.maxPerUser} live-progress sockets per user` })
        return yield* close(CloseCodes.tooManySockets, "too many sockets")
      }
      authenticated = true
      const events = yield* Queue.sliding<GenerationEvent>(EVENT_BACKLOG)
      yield* hub.subscribe(user.right.id, (event) => void Queue.unsafeOffer(events, event))
      yield* send({ type: "ready", userId: user.right.id })
      return yield* Queue.take(events).pipe(Effect.flatMap(send), Effect.forever)
    })

    const relaying = yield* Effect.forkScoped(relay)
    const leaving = yield* Effect.forkScoped(Effect.zipRight(ticket.goingAway, close(CloseCodes.goingAway, "server shutting down")))
    // Ends when the socket closes, whoever closed it; a close code other than 1000 is no failure here.
    const opened = yield* Deferred.make<void>()
    const unopened = Deferred.await(opened).pipe(
      Effect.timeoutOption(HANDSHAKE_LIMIT),
      Effect.flatMap(Option.match({ onNone: () => Effect.logWarning("websocket handshake did not complete; dropped"), onSome: () => Effect.never }))
    )
    yield* socket.runRaw(onMessage, { onOpen: Deferred.succeed(opened, undefined) }).pipe(Effect.exit, Effect.raceFirst(unopened))
    yield* Fiber.interrupt(relaying)
    yield* Fiber.interrupt(leaving)
  }).pipe(Effect.scoped)

/**
 * GET /api/ws: live progress of the caller's generations over a WebSocket, on the API's own server
 * (the platform's upgrade support), so it shares the request log, CORS and the error body of a
 * refusal. A browser's Origin must pass the CORS policy (403 before the upgrade); a client without
 * one (not a browser) is served, since it authenticates like any API client.
 */
export const GenerationEventsSocketLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const sockets = yield* OpenSockets
    const resolver = makeClientAddressResolver(config.http.trustedProxies)
    const context = yield* Effect.context<Accounts | GenerationEventHub | AppConfig>()
    yield* router.get(
      SOCKET_PATH,
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const origin = request.headers["origin"]
        if (origin !== undefined && !isAllowedOrigin(config.cors.policy, origin)) {
          return yield* new Forbidden({ message: "WebSocket connections from this origin are not allowed" })
        }
        if (request.headers["upgrade"]?.toLowerCase() !== "websocket") {
          return yield* new UpgradeRequired({ message: "This endpoint takes a WebSocket connection (Upgrade: websocket)" })
        }
        const problem = handshakeProblem(request.headers)
        if (problem !== undefined) return yield* new BadRequest({ message: `The WebSocket handshake is not valid: ${problem}` })
        const address = resolver.resolve(Option.getOrUndefined(request.remoteAddress), request.headers["x-forwarded-for"]) ?? "unknown-peer"
        if (sockets.pendingFrom(address) >= config.websocket.maxPendingPerClient) {
          return yield* new RateLimited({
            message: "Too many sockets waiting to authenticate from this address; try again shortly",
            retryAfter: Math.max(1, Math.ceil(Duration.toSeconds(config.websocket.authTimeout))),
            limit: config.websocket.maxPendingPerClient
          })
        }
        const incoming = NodeHttpServerRequest.toIncomingMessage(request)
        const socket = yield* Effect.orDie(request.upgrade)
        yield* Effect.scoped(Effect.flatMap(sockets.track(address, incoming), (ticket) => session(socket, ticket)))
        return HttpServerResponse.empty()
      }).pipe(Effect.provide(context))
    )
  })
)
