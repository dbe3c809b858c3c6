import { load, start, stop } from "./serverProcess.js"
const path = process.argv[2] ?? "/health/liveness"
const app = await start("src/main.ts", { PORT: "0", HOST: "127.0.0.1", LOG_FORMAT: "json", LOG_LEVEL: process.env["LL"] ?? "info", SHUTDOWN_DRAIN_DELAY: "0" }, ["--cpu-prof", "--cpu-prof-dir=/tmp/probeprof", "--cpu-prof-name=probe.cpuprofile"])
await load(`${app.base}${path}`, 2, 50)
const r = await load(`${app.base}${path}`, 6, 50, { pid: app.child.pid })
console.log(r)
await stop(app.child)
