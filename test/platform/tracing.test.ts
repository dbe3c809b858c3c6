import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, FiberRef, Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"

/** No OTEL_EXPORTER_OTLP_ENDPOINT: nothing exports spans (tracing.ts), so request fibers make none: neither the HTTP span nor Effect.fn's. */
describe("tracing while nothing exports spans", () => {
  let app: InProcessApp
  beforeAll(async () => {
    const extraRoutes = HttpApiBuilder.Router.use((router) =>
      router.get("/__tracing", Effect.gen(function*() {
        const enabled = yield* FiberRef.get(FiberRef.currentTracerEnabled)
        const requestSpan = yield* Effect.option(Effect.currentSpan)
        const inner = yield* Effect.fn("Probe.inner")(function*() {
          return yield* Effect.currentSpan
        })()
        return HttpServerResponse.unsafeJson({ enabled, requestSpan: Option.isSome(requestSpan), innerSampled: inner.sampled })
      }))
    )
    app = await startApp(testEnv({ ROLE: "api" }), { extraRoutes })
  })
  afterAll(() => app?.close())

  it("a request has no HTTP span, and Effect.fn inside it makes an unsampled no-op span", async () => {
    const response = await fetch(app.url("/__tracing"))
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ enabled: false, requestSpan: false, innerSampled: false })
  })
})
