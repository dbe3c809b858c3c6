import { spawn } from "node:child_process"
import * as path from "node:path"
import { PassThrough } from "node:stream"
import { Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { lineBatch, makeLoggerLive } from "../../src/layers/platform/LoggerLive.js"
import { AccessLog, type AccessLine } from "../../src/services/platform/AccessLog.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"

/** Runs `program` with the app's logger writing into a capture stream; the text it wrote. */
const capture = async (program: Effect.Effect<void, never, AccessLog>, env: Record<string, string> = {}) => {
  const config = await Effect.runPromise(appConfigFrom({ LOG_FORMAT: "json", LOG_LEVEL: "info", ...env }))
  const out = new PassThrough()
  let text = ""
  out.on("data", (chunk: Buffer) => (text += chunk.toString()))
  await Effect.runPromise(program.pipe(Effect.provide(makeLoggerLive({ destination: out }).pipe(Layer.provide(Layer.succeed(AppConfig, config))))))
  await new Promise((resolve) => setImmediate(resolve))
  return text.split("\n").filter((line) => line !== "")
}

/** The access line of the Effect path (requestLog's): its fields logged under a requestId annotation. */
const effectPathLine = ({ requestId, ...fields }: AccessLine) => Effect.logInfo("request", fields).pipe(Effect.annotateLogs("requestId", requestId))
const withoutTime = (line: string) => line.replace(/"time":"[^"]*"/, `"time":"T"`)

describe("access lines written straight to the log stream", () => {
  const lines: ReadonlyArray<AccessLine> = [
    { method: "GET", route: "/health/liveness", status: 200, durationMs: 0.42, requestId: "3f1c2a9e-4b7d-4e8a-9c0f-1a2b3c4d5e6f" },
    { method: "POST", route: "/api/apps/video-mixer/generate", status: 429, durationMs: 12, requestId: "client.id:7_A-b" },
    // A template with characters JSON escapes, and a duration that is not a number (pino writes null).
    { method: "GET", route: "/api/a\"b\\c/:id", status: 503, durationMs: Number.NaN, requestId: "abcdefgh" }
  ]

  it("are byte for byte the lines the Effect logger writes for the same request (time aside)", async () => {
    for (const line of lines) {
      const [direct, general] = await capture(Effect.gen(function*() {
        (yield* AccessLog).write(line)
        yield* effectPathLine(line)
      }))
      expect(withoutTime(direct!)).toBe(withoutTime(general!))
      expect(JSON.parse(direct!)).toMatchObject({ level: 30, msg: "request", method: line.method, route: line.route, status: line.status, requestId: line.requestId })
    }
  })

  it("follow the configured level and format", async () => {
    const quiet = await capture(Effect.gen(function*() {
      (yield* AccessLog).write(lines[0]!)
      yield* Effect.logWarning("still here")
    }), { LOG_LEVEL: "warn" })
    expect(quiet.map((line) => JSON.parse(line).msg)).toEqual(["still here"])
    const pretty = await capture(Effect.flatMap(AccessLog, (log) => Effect.sync(() => log.write(lines[0]!))), { LOG_FORMAT: "pretty" })
    expect(pretty.join("\n")).toMatch(/INFO.*request/)
    expect(pretty.join("\n")).toContain("/health/liveness")
  })

  it("a line batch hands the lines of one turn on as one string, in order, and drain hands them at once", async () => {
    const written: Array<string> = []
    const batch = lineBatch((text) => written.push(text))
    for (let i = 0; i < 5; i++) batch.write(`${i}\n`)
    expect(written).toEqual([])
    await new Promise((resolve) => setImmediate(resolve))
    expect(written).toEqual(["0\n1\n2\n3\n4\n"])
    batch.write("5\n")
    batch.write("6\n")
    batch.drain()
    expect(written).toEqual(["0\n1\n2\n3\n4\n", "5\n6\n"])
    await new Promise((resolve) => setImmediate(resolve))
    expect(written).toHaveLength(2) // nothing left for the scheduled turn
  })

  it("a batch whose stream is closed is dropped, never thrown from the scheduled turn", async () => {
    const batch = lineBatch(() => {
      throw new Error("SonicBoom destroyed")
    })
    batch.write("lost\n")
    await new Promise((resolve) => setImmediate(resolve)) // an uncaught throw here fails the run
    batch.write("lost too\n")
    expect(() => batch.drain()).not.toThrow()
  })

  it("a process that exits in the turn it logged leaves every line on stdout, in order", async () => {
    const root = path.resolve(import.meta.dirname, "../..")
    const child = spawn(path.join(root, "node_modules/.bin/node"), ["--import", "tsx", "test/fixtures/logBurst.ts"], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", LINES: "2000" },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    const code = await new Promise((resolve) => child.once("close", resolve))
    expect(code).toBe(0)
    const logged = out.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as Record<string, unknown>)
    const burst = logged.filter((line) => line["msg"] === "burst" || line["msg"] === "request")
    expect(burst).toHaveLength(2000)
    expect(burst.map((line) => line["i"] ?? Number(line["durationMs"]))).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  }, 30_000)
})
