import { createServer, type Server, type Socket, connect } from "node:net"

export type ProxyMode = "pass" | "refuse" | "hang"

/**
 * A TCP proxy in front of a real server, to make it unreachable ("refuse": existing connections are
 * cut and new ones reset) or hung ("hang": connections are accepted and nothing is forwarded).
 */
export class TcpProxy {
  private mode: ProxyMode = "pass"
  private readonly sockets = new Set<Socket>()
  private constructor(private readonly server: Server, readonly port: number) {}

  static start(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
    let proxy: TcpProxy
    const server = createServer((client) => {
      proxy.sockets.add(client)
      client.on("close", () => proxy.sockets.delete(client))
      client.on("error", () => client.destroy())
      if (proxy.mode === "refuse") return client.resetAndDestroy()
      if (proxy.mode === "hang") return
      const upstream = connect(targetPort, targetHost)
      proxy.sockets.add(upstream)
      upstream.on("close", () => {
        proxy.sockets.delete(upstream)
        client.destroy()
      })
      upstream.on("error", () => client.destroy())
      client.on("close", () => upstream.destroy())
      client.pipe(upstream)
      upstream.pipe(client)
    })
    return new Promise((resolve) =>
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        proxy = new TcpProxy(server, typeof address === "object" && address !== null ? address.port : 0)
        resolve(proxy)
      })
    )
  }

  setMode(mode: ProxyMode): void {
    this.mode = mode
    if (mode !== "pass") {
      for (const socket of this.sockets) {
        if (mode === "refuse") socket.destroy()
        else {
          socket.unpipe()
          socket.pause()
        }
      }
    }
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

/** Accepts connections and never answers: a dependency that hangs. */
export const startHangingServer = (): Promise<{ port: number; close: () => Promise<void> }> => {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => undefined)
  })
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resolve({
        port: typeof address === "object" && address !== null ? address.port : 0,
        close: () => {
          for (const s of sockets) s.destroy()
          return new Promise((r) => server.close(() => r()))
        }
      })
    })
  )
}
