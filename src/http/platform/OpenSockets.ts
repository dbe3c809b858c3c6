import type * as http from "node:http"
import type { Duplex } from "node:stream"
import { Context, Deferred, Effect, FiberId, type Scope } from "effect"

/**
 * What a connection may send. The WebSocket library assembles a message of up to 100 MiB before the
 * app sees it, and the platform gives no way to lower that; every message a client sends here is a
 * token or a ping, so the bytes are counted as they arrive on the TCP socket instead: before the
 * socket authenticates it may send PRE_AUTH_BYTES in all, afterwards POST_AUTH_BYTES per
 * POST_AUTH_WINDOW_MS. A connection over its budget is destroyed.
 */
export const PRE_AUTH_BYTES = 16 * 1024
export const POST_AUTH_BYTES = 64 * 1024
export const POST_AUTH_WINDOW_MS = 60_000

/** One socket's place in the counts, from its upgrade until its session ends. */
export interface SocketTicket {
  /** Completes when the server asks its sockets to go away (shutdown): the handler then closes it with 1001. */
  readonly goingAway: Effect.Effect<void>
  /**
   * The socket authenticated as `userId`: it leaves its address's pending count and gets the
   * post-authentication byte budget. False when the user already has the most sockets allowed.
   */
  readonly authenticated: (userId: string) => boolean
}

export interface OpenSocketsShape {
  /**
   * Counts one open socket, pending authentication from `address`, until the scope closes; `request`
   * is its upgrade request, whose TCP connection gets the byte budgets.
   */
  readonly track: (address: string, request: http.IncomingMessage) => Effect.Effect<SocketTicket, never, Scope.Scope>
  readonly count: () => number
  /** Sockets from this address that have not authenticated yet. */
  readonly pendingFrom: (address: string) => number
  /** Asks every socket, and any opened from now on, to go away; completes when none is open. */
  readonly closeAll: Effect.Effect<void>
  /**
   * Destroys the connections of sockets still open (a client that never answers the close
   * handshake would otherwise hold the server's close for the WebSocket library's 30 s timeout).
   */
  readonly destroyRemaining: () => number
}

/** The server's upgraded (WebSocket) connections, which the HTTP drain closes (HttpServerLive.ts). */
export class OpenSockets extends Context.Tag("app/OpenSockets")<OpenSockets, OpenSocketsShape>() {}

interface Budget {
  authenticated: boolean
  bytes: number
  windowStart: number
}

const bump = (counts: Map<string, number>, key: string, by: number) => {
  const next = (counts.get(key) ?? 0) + by
  if (next <= 0) counts.delete(key)
  else counts.set(key, next)
}

export const makeOpenSockets = (server: http.Server, options: { readonly maxPerUser: number }): OpenSocketsShape => {
  // Every upgraded connection, from its upgrade request to its close: registered before the
  // platform's own upgrade listener, so none is missed.
  const upgraded = new Set<Duplex>()
  const budgets = new WeakMap<http.IncomingMessage, Budget>()
  server.on("upgrade", (request: http.IncomingMessage, socket: Duplex) => {
    upgraded.add(socket)
    socket.once("close", () => upgraded.delete(socket))
    const budget: Budget = { authenticated: false, bytes: 0, windowStart: Date.now() }
    budgets.set(request, budget)
    const count = (chunk: Buffer) => {
      budget.bytes += chunk.length
      if (!budget.authenticated) {
        if (budget.bytes > PRE_AUTH_BYTES) socket.destroy()
        return
      }
      const now = Date.now()
      if (now - budget.windowStart >= POST_AUTH_WINDOW_MS) {
        budget.windowStart = now
        budget.bytes = chunk.length
      }
      if (budget.bytes > POST_AUTH_BYTES) socket.destroy()
    }
    // Counted once the WebSocket library reads the socket: a 'data' listener added now would start
    // the flow before the library listens, and what arrived meanwhile would never reach it.
    const onListener = (event: string | symbol) => {
      if (event !== "data") return
      socket.off("newListener", onListener)
      queueMicrotask(() => socket.on("data", count))
    }
    socket.on("newListener", onListener)
  })
  const goingAway = Deferred.unsafeMake<void>(FiberId.none)
  const waiters = new Set<() => void>()
  const pending = new Map<string, number>()
  const perUser = new Map<string, number>()
  let open = 0

  const track = (address: string, request: http.IncomingMessage) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        open += 1
        bump(pending, address, 1)
        return { user: undefined as string | undefined }
      }),
      (state) =>
        Effect.sync(() => {
          open -= 1
          if (state.user === undefined) bump(pending, address, -1)
          else bump(perUser, state.user, -1)
          if (open === 0) for (const wake of waiters) wake()
        })
    ).pipe(Effect.map((state): SocketTicket => ({
      goingAway: Deferred.await(goingAway),
      authenticated: (userId) => {
        if (state.user !== undefined) return true
        if ((perUser.get(userId) ?? 0) >= options.maxPerUser) return false
        bump(pending, address, -1)
        bump(perUser, userId, 1)
        state.user = userId
        const budget = budgets.get(request)
        if (budget !== undefined) {
          budget.authenticated = true
          budget.bytes = 0
          budget.windowStart = Date.now()
        }
        return true
      }
    })))

  return {
    track,
    count: () => open,
    pendingFrom: (address) => pending.get(address) ?? 0,
    destroyRemaining: () => {
      const remaining = upgraded.size
      for (const socket of upgraded) socket.destroy()
      return remaining
    },
    closeAll: Effect.zipRight(
      Deferred.succeed(goingAway, undefined),
      Effect.async<void>((resume) => {
        if (open === 0) return resume(Effect.void)
        const wake = () => {
          waiters.delete(wake)
          resume(Effect.void)
        }
        waiters.add(wake)
        return Effect.sync(() => waiters.delete(wake))
      })
    )
  }
}
