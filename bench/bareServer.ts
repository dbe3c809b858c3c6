import { createServer } from "node:http"

/** The baseline: bare node:http answering the same bytes as the app's probes. */
const liveness = JSON.stringify({ status: "ok" })
const readiness = JSON.stringify({ status: "ready", checks: { database: { status: "up", latencyMs: 1 }, redis: { status: "up", latencyMs: 1 } } })
const server = createServer((req, res) => {
  const body = req.url === "/health/readiness" ? readiness : liveness
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  res.end(body)
})
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(JSON.stringify({ msg: "lumiku-backend listening", port: typeof address === "object" && address !== null ? address.port : 0 }) + "\n")
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))
