import { Writable } from "node:stream"
import { Cause, FiberId, FiberRefs, HashMap, List, LogLevel } from "effect"
import pino from "pino"
import { makePinoLogger, pinoOptions } from "../src/layers/platform/LoggerLive.js"
import { makeRedactor } from "../src/services/platform/redact.js"

/**
 * npm run bench:log: the cost of one log line on the request path. For BENCH_LINES lines (200 000)
 * after as many unmeasured ones, per shape:
 * - redact: `Redactor.value` of the access line's fields plus `Redactor.text` of its message;
 * - line: the whole Effect logger (fields, redaction, pino serialisation with the app's pino
 *   options) into a discarding stream.
 * Shapes: the access line as requestLog writes it, and a line whose strings carry the markers the
 * redactor looks for (a query string with a token, a bearer header), which takes the slow path.
 * Runs in one process, no I/O; figures are ns per line (median of 5 rounds).
 */

const lines = Number(process.env["BENCH_LINES"] ?? "200000")
const secrets = ["q8V#t2LmZ9w!Rk4sPz7YxN1c@Hd6Jf3Gb5Uv0Ea", "f3a9c0b7e2d54c1a8b6e9f0d2c4a7b1e", "D18472", "r3d1s-pw-Xk29qLm", "pg-Pw-0a9b8c"]
const redactor = makeRedactor(secrets)

const access = () => ({ method: "GET", route: "/api/credits/balance", status: 200, durationMs: 1.37 })
const suspicious = () => ({
  method: "GET",
  url: "/api/apps/video/run?token=abc123def456&page=2",
  status: 401,
  detail: "upstream said: Authorization: Bearer abc.def.ghi"
})
const annotations = HashMap.make(["requestId", "3f1c2a9e-4b7d-4e8a-9c0f-1a2b3c4d5e6f"])

const sink = new Writable({ write: (_chunk, _encoding, done) => done() })
const logger = makePinoLogger(pino(pinoOptions("info", "production"), sink), redactor)
const context = FiberRefs.unsafeMake(new Map())

const round = (run: () => void): number => {
  for (let i = 0; i < lines; i++) run()
  const start = process.hrtime.bigint()
  for (let i = 0; i < lines; i++) run()
  return Number(process.hrtime.bigint() - start) / lines
}
const median = (run: () => void) => {
  const figures = Array.from({ length: 5 }, () => round(run)).sort((a, b) => a - b)
  return figures[2]!.toFixed(0)
}

for (const [name, fields] of [["access", access], ["suspicious", suspicious]] as const) {
  const redact = median(() => {
    redactor.value({ ...fields(), requestId: "3f1c2a9e-4b7d-4e8a-9c0f-1a2b3c4d5e6f" })
    redactor.text("request")
  })
  const line = median(() =>
    logger.log({
      fiberId: FiberId.none,
      logLevel: LogLevel.Info,
      message: ["request", fields()],
      cause: Cause.empty,
      context,
      spans: List.empty(),
      annotations,
      date: new Date()
    })
  )
  process.stdout.write(`${name.padEnd(10)} redact ${redact.padStart(6)} ns/line   whole line ${line.padStart(6)} ns/line\n`)
}
