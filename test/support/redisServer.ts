import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

/** A private redis-server on its own port, so a test can stop and restart it without touching the shared one. */
export class PrivateRedis {
  private child: ChildProcess | undefined
  constructor(readonly port: number, private readonly extraArgs: ReadonlyArray<string> = []) {}

  static async start(extraArgs: ReadonlyArray<string> = []): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), extraArgs)
    await redis.start()
    return redis
  }

  async start(): Promise<void> {
    const child = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...this.extraArgs], {
      stdio: ["ignore", "pipe", "ignore"]
    })
    this.child = child
    await new Promise<void>((resolve, reject) => {
      let out = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes("Ready to accept connections")) resolve()
      })
      child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}`)))
    })
  }

  async stop(): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null) return
    this.child = undefined
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })
  }
}
