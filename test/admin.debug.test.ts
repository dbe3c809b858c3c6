import { Effect, Schema, Scope } from "effect"
import { Queue } from "bullmq"
import { expect, it } from "vitest"
import { Redis } from "../src/services/Redis.js"
import { defineJob } from "../src/services/jobs/JobDefinition.js"
import type { JobHandler } from "../src/workers/runtime.js"
import { startApp } from "./support/inProcessApp.js"
import { testEnv } from "./support/env.js"
import { PrivateRedis } from "./support/redisServer.js"
const TOKEN = "admin-test-token-0123456789abcdefghijklmnopqrstuvwxyz"
const definition = defineJob({ queue: "admin-dbg", payload: Schema.Struct({ n: Schema.Number }), timeout: "5 seconds", concurrency: 2 })
const handler: JobHandler<{ readonly n: number }, { readonly n: number }, never> = { definition, run: () => Effect.void }
it("dbg", async () => {
  const t0 = Date.now()
  const log = (m: string) => console.log(Date.now() - t0, m)
  const redis = await PrivateRedis.start()
  const down = await startApp(testEnv({ ROLE: "api", ADMIN_TOKEN: TOKEN, REDIS_PORT: String(redis.port) }), { jobHandlers: [handler] })
  const scope = Effect.runSync(Scope.make())
  const c = await Effect.runPromise(Effect.flatMap(Redis, (r) => r.bullConnection("dbg", { producer: true })).pipe(Effect.provide(down.context), Scope.extend(scope)))
  await new Promise((r) => setTimeout(r, 300))
  const q = new Queue("admin-dbg", { connection: c, prefix: "x" })
  q.on("error", () => {})
  log("started " + c.status + " " + JSON.stringify({ eoq: c.options.enableOfflineQueue, m: c.options.maxRetriesPerRequest, ct: c.options.commandTimeout }))
  console.log(await q.getJobCounts("waiting"))
  await redis.stop()
  log("stopped")
  const t = (p: Promise<unknown>, name: string) => Promise.race([p.then((v) => `${name} ok ${JSON.stringify(v)}`, (e) => `${name} err ${e.message}`), new Promise((r) => setTimeout(() => r(`${name} HANG`), 3000))])
  for (let i = 0; i < 3; i++) {
    log("status " + c.status)
    log(String(await t(c.get("x"), "raw get")))
    log(String(await t(q.getJobCounts("waiting"), "counts")))
  }
  await q.close()
  await down.close()
  expect(1).toBe(1)
}, 60000)
