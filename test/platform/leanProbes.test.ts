import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"

const lines = (app: InProcessApp, requestId: string) =>
  app.logLines().map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l["requestId"] === requestId)

/**
 * GET /health/liveness and /health/readiness without an Origin are answered by the Node server
 * before the Effect stack (HttpServerLive); with an Origin they go through the stack. Both must
 * give the same answer.
 */
describe("probes answered ahead of the Effect stack", () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp(testEnv({ ROLE: "api", LOG_LEVEL: "info", CORS_ORIGIN: "https://app.lumiku.com" }))
  })
  afterAll(() => app?.close())

  it.each(["liveness", "readiness"])("%s: the same status, body and headers as the HttpApi route gives, its request id kept, and one access-log line", async (probe) => {
    const lean = await fetch(app.url(`/health/${probe}?probe=1`), { headers: { "x-request-id": `lean-${probe}-0001` } })
    // A denied Origin goes through the Effect stack (CORS decides), which adds nothing but Vary.
    const full = await fetch(app.url(`/health/${probe}?probe=1`), { headers: { "x-request-id": `full-${probe}-0001`, origin: "https://elsewhere.example" } })
    expect(lean.status).toBe(200)
    expect(full.status).toBe(200)
    expect(await lean.text()).toBe(await full.text())
    const headers = (r: Response) => Object.fromEntries([...r.headers].filter(([k]) => !["date", "x-request-id"].includes(k)))
    expect(headers(lean)).toEqual(headers(full))
    expect(lean.headers.get("x-request-id")).toBe(`lean-${probe}-0001`)
    await new Promise((r) => setTimeout(r, 250)) // the access log is flushed in batches
    for (const id of [`lean-${probe}-0001`, `full-${probe}-0001`]) {
      const logged = lines(app, id)
      expect(logged).toHaveLength(1)
      expect(logged[0]).toMatchObject({ msg: "request", method: "GET", route: `/health/${probe}`, status: 200 })
      expect(typeof logged[0]!["durationMs"]).toBe("number")
    }
    // The same line, field for field, whichever path answered.
    const keys = (id: string) => Object.keys(lines(app, id)[0]!).sort()
    expect(keys(`lean-${probe}-0001`)).toEqual(keys(`full-${probe}-0001`))
  })

  it("an allowed Origin still gets its CORS headers (the Effect stack answers), and other methods keep their answers", async () => {
    const allowed = await fetch(app.url("/health/liveness"), { headers: { origin: "https://app.lumiku.com" } })
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.lumiku.com")
    const post = await fetch(app.url("/health/liveness"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
    expect(post.status).toBe(404)
    expect(await post.json()).toMatchObject({ success: false, code: "NOT_FOUND" })
  })
})
