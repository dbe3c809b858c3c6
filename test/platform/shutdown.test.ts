import { Agent, request as httpRequest } from "node:http"
import { connect } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { testEnv } from "../support/env.js"
import { killAll, spawnServer } from "../support/spawnServer.js"

const get = (url: string, agent?: Agent) =>
  new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
    const req = httpRequest(url, agent === undefined ? {} : { agent }, (res) => {
      let body = ""
      res.on("data", (c: Buffer) => (body += c.toString()))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }))
    })
    req.on("error", reject)
    req.end()
  })

const stageLogs = (logs: ReadonlyArray<Record<string, unknown>>) =>
  logs.map((l) => String(l["msg"])).filter((m) => m.startsWith("shutdown."))

describe("graceful shutdown of the real process", () => {
  afterEach(killAll)
  it("SIGTERM with 100 slow requests in flight: all answer 200, readiness is 503 during the drain, exit 0", async () => {
    const server = await spawnServer(testEnv({ SHUTDOWN_DRAIN_DELAY: "1500", SHUTDOWN_TIMEOUT: "20000" }))
    const agent = new Agent({ keepAlive: true, maxSockets: 200 })
    const inFlight = Array.from({ length: 100 }, () => get(server.url("/__test/sleep?ms=2500"), agent))
    await new Promise((r) => setTimeout(r, 500))
    const signalAt = Date.now()
    server.child.kill("SIGTERM")
    await new Promise((r) => setTimeout(r, 300))
    // During the drain delay the server still serves, and readiness says it is going away.
    const readiness = await get(server.url("/health/readiness"))
    expect(readiness.status).toBe(503)
    expect(JSON.parse(readiness.body)).toMatchObject({ status: "not_ready", reason: "shutting_down" })
    expect((await get(server.url("/health/liveness"))).status).toBe(200)
    const results = await Promise.all(inFlight)
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 100 }, () => 200))
    // Responses finished after the listener closed tell keep-alive clients to go away.
    expect(results.filter((r) => r.connection === "close").length).toBeGreaterThan(0)
    const exit = await server.exited
    agent.destroy()
    expect(exit.code).toBe(0)
    expect(exit.at - signalAt).toBeLessThan(6_000)
    const stages = stageLogs(server.logs())
    expect(stages[0]).toBe("shutdown.start")
    const order = ["http.drain-delay", "http.stop-accepting", "http.in-flight", "postgres.close", "redis.close(request)"].map(
      (name) => stages.indexOf(`shutdown.stage ${name} finished`)
    )
    expect(order.every((i) => i > 0)).toBe(true)
    expect([...order].sort((a, b) => a - b), stages.join("\n")).toEqual(order)
    expect(stages.at(-1)).toBe("shutdown.complete")
    const finished = server.logs().filter((l) => String(l["msg"]).endsWith(" finished"))
    expect(finished.every((l) => typeof l["durationMs"] === "number")).toBe(true)
  }, 30_000)

  it("a request that outlives SHUTDOWN_TIMEOUT makes the process exit 1 near the cap, naming the stage", async () => {
    const server = await spawnServer(testEnv({ SHUTDOWN_TIMEOUT: "2 seconds" }))
    const stuck = get(server.url("/__test/sleep?ms=60000")).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 300))
    const signalAt = Date.now()
    server.child.kill("SIGTERM")
    const exit = await server.exited
    const elapsed = exit.at - signalAt
    expect(exit.code).toBe(1)
    expect(elapsed).toBeGreaterThanOrEqual(1_900)
    expect(elapsed).toBeLessThan(3_500)
    const forced = server.logs().find((l) => String(l["msg"]).startsWith("shutdown.forced"))
    expect(forced?.["stages"]).toContain("http.in-flight")
    await stuck
  }, 20_000)

  it("idle keep-alive sockets do not delay the exit", async () => {
    const server = await spawnServer(testEnv())
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 })
    await Promise.all(Array.from({ length: 20 }, () => get(server.url("/health/liveness"), agent)))
    // Plus raw sockets that connected and never sent a byte.
    const raw = Array.from({ length: 10 }, () => connect(server.port, "127.0.0.1"))
    await new Promise((r) => setTimeout(r, 200))
    const signalAt = Date.now()
    server.child.kill("SIGTERM")
    const exit = await server.exited
    agent.destroy()
    for (const s of raw) s.destroy()
    expect(exit.code).toBe(0)
    expect(exit.at - signalAt).toBeLessThan(1_500)
  }, 20_000)

  it("a second signal exits 1 at once", async () => {
    const server = await spawnServer(testEnv({ SHUTDOWN_DRAIN_DELAY: "10 seconds" }))
    server.child.kill("SIGTERM")
    await new Promise((r) => setTimeout(r, 600))
    const secondAt = Date.now()
    server.child.kill("SIGINT")
    const exit = await server.exited
    expect(exit.code).toBe(1)
    expect(exit.at - secondAt).toBeLessThan(1_000)
    expect(server.logs().some((l) => String(l["msg"]).startsWith("shutdown.aborted"))).toBe(true)
  }, 20_000)

  it("an uncaught exception is logged once, redacted, with its stack, then shuts down gracefully with exit 1", async () => {
    const canary = "Canary-Jwt-Secret-3f9a1c7e5b2d4a6c8e0f1a2b3c4d"
    const server = await spawnServer(testEnv({ JWT_SECRET: canary }))
    await get(server.url("/__test/crash"))
    const exit = await server.exited
    expect(exit.code).toBe(1)
    const fatal = server.logs().filter((l) => l["kind"] === "uncaughtException")
    expect(fatal).toHaveLength(1)
    expect(JSON.stringify(fatal[0])).toContain("server.ts")
    expect(server.lines().join("\n")).not.toContain(canary)
    expect(JSON.stringify(fatal[0])).toContain("[REDACTED]")
    const stages = stageLogs(server.logs())
    expect(stages).toContain("shutdown.stage postgres.close finished")
    expect(stages.at(-1)).toBe("shutdown.complete")
  }, 20_000)

  it("an unhandled rejection takes the same graceful path with exit 1", async () => {
    const server = await spawnServer(testEnv())
    await get(server.url("/__test/reject"))
    const exit = await server.exited
    expect(exit.code).toBe(1)
    expect(server.logs().filter((l) => l["kind"] === "unhandledRejection")).toHaveLength(1)
    expect(stageLogs(server.logs()).at(-1)).toBe("shutdown.complete")
  }, 20_000)
})
