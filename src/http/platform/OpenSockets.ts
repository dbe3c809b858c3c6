import type * as http from "node:http"
import type { Duplex } from "node:stream"
import { Context, Deferred, Effect, FiberId, type Scope } from "effect"

export interface OpenSocketsShape {
  /**
   * Counts one open socket until the scope closes. Gives back an effect that completes when the
   * server asks its sockets to go away (shutdown): the socket's handler then closes it with 1001.
   */
  readonly track: Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  readonly count: () => number
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

export const makeOpenSockets = (server: http.Server): OpenSocketsShape => {
  // Every upgraded connection, from its upgrade request to its close: registered before the
  // platform's own upgrade listener, so none is missed.
  const upgraded = new Set<Duplex>()
  server.on("upgrade", (_request: http.IncomingMessage, socket: Duplex) => {
    upgraded.add(socket)
    socket.once("close", () => upgraded.delete(socket))
  })
  const goingAway = Deferred.unsafeMake<void>(FiberId.none)
  const waiters = new Set<() => void>()
  let open = 0
  const untrack = Effect.sync(() => {
    open -= 1
    if (open === 0) for (const wake of waiters) wake()
  })
  return {
    track: Effect.acquireRelease(Effect.sync(() => void (open += 1)), () => untrack).pipe(Effect.as(Deferred.await(goingAway))),
    count: () => open,
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
