import { request as httpRequest } from "node:http"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { PassThrough } from "node:stream"
import {
  FileSystem,
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiSchema,
  HttpIncomingMessage,
  HttpServer
} from "@effect/platform"
import { Context, Effect, Exit, Layer, Option, Schema, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { NotFound } from "../../src/http/platform/ApiError.js"
import { errorEnvelope } from "../../src/http/platform/middleware/errorEnvelope.js"
import { requestLog } from "../../src/http/platform/middleware/requestLog.js"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { makeHttpServerLive } from "../../src/http/platform/HttpServerLive.js"
import { makeLoggerLive } from "../../src/layers/platform/LoggerLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"
import { testEnv } from "../support/env.js"

// A small API served through the same middleware as the real one, with endpoints that fail in
// every way the envelope has to handle.
class Item extends Schema.Class<Item>("Item")({
  name: Schema.String.pipe(Schema.minLength(1)),
  size: Schema.Struct({ width: Schema.Int.pipe(Schema.between(1, 100)) })
}) {}
class TestGroup extends HttpApiGroup.make("test")
  .add(HttpApiEndpoint.post("create", "/items").setPayload(Item).addSuccess(Item))
  .add(HttpApiEndpoint.get("missing", "/missing").addSuccess(Schema.Void).addError(NotFound))
  .add(HttpApiEndpoint.get("defect", "/defect").addSuccess(Schema.Void))
  .add(HttpApiEndpoint.post("upload", "/upload").setPayload(HttpApiSchema.Multipart(Schema.Struct({ title: Schema.String }))).addSuccess(Schema.Struct({ title: Schema.String })))
  .add(HttpApiEndpoint.get("slow", "/slow").addSuccess(Schema.Void)) {}
class TestApi extends HttpApi.make("test").add(TestGroup) {}

const TestGroupLive = HttpApiBuilder.group(TestApi, "test", (h) =>
  h
    .handle("create", ({ payload }) => Effect.succeed(payload))
    .handle("missing", () => Effect.fail(new NotFound({ message: "That item does not exist" })))
    .handle("defect", () => Effect.die(new Error("internal detail: connection string postgres://leak")))
    .handle("upload", ({ payload }) => Effect.succeed(payload))
    .handle("slow", () => Effect.sleep("20 seconds")))

const LIMIT = 2048

const waitFor = async (condition: () => boolean, withinMs = 5_000) => {
  const start = Date.now()
  while (!condition()) {
    if (Date.now() - start > withinMs) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe("error envelope and request middleware", () => {
  const lines: Array<string> = []
  let scope: Scope.CloseableScope
  let base = ""
  beforeAll(async () => {
    const config = await Effect.runPromise(appConfigFrom(testEnv({ LOG_LEVEL: "info", BODY_LIMIT_BYTES: String(LIMIT) })))
    const destination = new PassThrough()
    destination.on("data", (c: Buffer) => lines.push(...c.toString().split("\n").filter((l) => l !== "")))
    const layer = HttpApiBuilder.serve(requestLog).pipe(
      Layer.provide(HttpApiBuilder.middleware(errorEnvelope(LIMIT))),
      Layer.provide(HttpApiBuilder.api(TestApi).pipe(Layer.provide(TestGroupLive))),
      Layer.provide(Layer.succeed(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(LIMIT)))),
      Layer.provideMerge(makeHttpServerLive({ port: 0, host: "127.0.0.1" })),
      Layer.provide(makeLoggerLive({ destination })),
      Layer.provide(Layer.succeed(AppConfig, config))
    )
    scope = Effect.runSync(Scope.make())
    const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
    const address = Context.get(context, HttpServer.HttpServer).address
    base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
  })
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

  const call = async (path: string, init?: RequestInit) => {
    const r = await fetch(base + path, init)
    return { status: r.status, headers: r.headers, body: (await r.json()) as Record<string, any> }
  }
  const expectEnvelope = (body: Record<string, any>, code: string) => {
    expect(body["success"]).toBe(false)
    expect(body["code"]).toBe(code)
    expect(typeof body["error"]).toBe("string")
    expect(body["error"]).toBe(body["message"])
    expect(body["requestId"]).toMatch(/.{8,}/)
  }

  it("valid requests pass through", async () => {
    const r = await call("/items", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "a", size: { width: 3 } }) })
    expect(r).toMatchObject({ status: 200, body: { name: "a", size: { width: 3 } } })
  })

  it("malformed JSON is 400 in the error shape", async () => {
    const r = await call("/items", { method: "POST", headers: { "content-type": "application/json" }, body: "{\"name\": " })
    expect(r.status).toBe(400)
    expectEnvelope(r.body, "MALFORMED_REQUEST")
  })

  it("a payload that fails the schema is 400 naming the failing path", async () => {
    const r = await call("/items", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "a", size: { width: 500 } }) })
    expect(r.status).toBe(400)
    expectEnvelope(r.body, "VALIDATION_ERROR")
    expect(r.body["error"]).toContain("size.width")
    expect(r.body["issues"][0].path).toBe("size.width")
  })

  it("typed errors keep their status and carry the shape", async () => {
    const r = await call("/missing")
    expect(r.status).toBe(404)
    expectEnvelope(r.body, "NOT_FOUND")
    expect(r.body["error"]).toBe("That item does not exist")
    expect(r.body).not.toHaveProperty("_tag")
  })

  it("unknown routes are 404 in the shape", async () => {
    const r = await call("/no/such/route?token=abc")
    expect(r.status).toBe(404)
    expectEnvelope(r.body, "NOT_FOUND")
    expect(r.body["error"]).not.toContain("token")
  })

  it("a defect is 500 without internal details, and is logged with its stack", async () => {
    const r = await call("/defect", { headers: { "x-request-id": "defect-request-0001" } })
    expect(r.status).toBe(500)
    expectEnvelope(r.body, "INTERNAL")
    expect(JSON.stringify(r.body)).not.toContain("leak")
    expect(r.body["requestId"]).toBe("defect-request-0001")
    const logged = lines.map((l) => JSON.parse(l) as Record<string, any>).find((l) => l["msg"] === "defect while handling a request")
    expect(logged?.["requestId"]).toBe("defect-request-0001")
    expect(String(logged?.["err"])).toContain("internal detail")
    expect(String(logged?.["err"])).toMatch(/at .*http\.test\.ts/)
  })

  it("a body over the limit with Content-Length is refused with 413 before it is read", async () => {
    const r = await call("/items", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "x".repeat(LIMIT), size: { width: 1 } }) })
    expect(r.status).toBe(413)
    expectEnvelope(r.body, "PAYLOAD_TOO_LARGE")
    expect(r.body["limitBytes"]).toBe(LIMIT)
  })

  /** Streams `total` bytes of `path` as a chunked body; resolves with what came back, or the socket error. */
  const streamBody = (path: string, contentType: string, total: number, requestId: string) => {
    const url = new URL(base + path)
    return new Promise<{ status?: number; headers?: Record<string, unknown>; body?: string; error?: string }>((resolve) => {
      const req = httpRequest({ hostname: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { "content-type": contentType, "transfer-encoding": "chunked", "x-request-id": requestId } }, (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (c: string) => (body += c))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      })
      req.on("error", (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? "error" }))
      const chunk = "x".repeat(1024)
      let sent = 0
      const pump = () => {
        while (sent < total && req.write(chunk)) sent += chunk.length
        if (sent < total) req.once("drain", pump)
        else req.end()
      }
      pump()
    })
  }
  const accessLines = (requestId: string) =>
    lines.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l["msg"] === "request" && l["requestId"] === requestId)

  it("a chunked body over the limit is answered 413 in the error shape, with Connection: close and an access line", async () => {
    const cases: ReadonlyArray<[string, string]> = [
      ["/items", "application/json"],
      ["/upload", "multipart/form-data; boundary=zz"]
    ]
    for (const [path, contentType] of cases) {
      const requestId = `chunked-${path.slice(1)}-0001`
      const outcome = await streamBody(path, contentType, 64 * 1024, requestId)
      expect(outcome.status, `${path}: ${JSON.stringify(outcome)}`).toBe(413)
      expect(outcome.headers?.["connection"]).toBe("close")
      expect(JSON.parse(outcome.body ?? "")).toMatchObject({ success: false, code: "PAYLOAD_TOO_LARGE", limitBytes: LIMIT, requestId })
      await waitFor(() => accessLines(requestId).length > 0)
      expect(accessLines(requestId)).toHaveLength(1)
      expect(accessLines(requestId)[0]).toMatchObject({ status: 413, route: path })
    }
    // A route that answers without reading the body may answer first (here 404); the client still
    // gets one whole answer in the error shape, and the access log says what it got.
    const requestId = "chunked-missing-route-0001"
    const outcome = await streamBody("/missing-route", "text/plain", 64 * 1024, requestId)
    expect([404, 413]).toContain(outcome.status)
    expect(JSON.parse(outcome.body ?? "")).toMatchObject({ success: false, requestId })
    await waitFor(() => accessLines(requestId).length > 0)
    expect(accessLines(requestId)[0]).toMatchObject({ status: outcome.status })
    expect(lines.filter((l) => l.includes("defect while handling"))).toHaveLength(1) // only the /defect test's
    expect((await call("/missing")).status).toBe(404)
  })

  it("a client that keeps sending far past the limit is cut off, and the server keeps serving", async () => {
    const outcome = await streamBody("/items", "application/json", 8 * 1024 * 1024, "chunked-endless-0001")
    expect(outcome.status === 413 || outcome.error === "ECONNRESET" || outcome.error === "EPIPE").toBe(true)
    expect((await call("/missing")).status).toBe(404)
  })

  it("multipart without a boundary, or broken, is 400 in the error shape, never 500", async () => {
    const noBoundary = await call("/upload", { method: "POST", headers: { "content-type": "multipart/form-data" }, body: "--x\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhi\r\n--x--\r\n" })
    expect(noBoundary.status).toBe(400)
    expectEnvelope(noBoundary.body, "MALFORMED_REQUEST")
    const broken = await call("/upload", { method: "POST", headers: { "content-type": "multipart/form-data; boundary=zz" }, body: "--zz\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nunterminated" })
    expect(broken.status).toBeGreaterThanOrEqual(400)
    expect(broken.status).toBeLessThan(500)
    const form = new FormData()
    form.set("title", "fine")
    expect((await call("/upload", { method: "POST", body: form })).body).toEqual({ title: "fine" })
  })

  it("a file where a string is expected is refused without naming any server path", async () => {
    const form = new FormData()
    form.set("title", new Blob(["secret file"]), "x.txt")
    const r = await fetch(base + "/upload", { method: "POST", body: form })
    const text = await r.text()
    expect(r.status).toBe(400)
    expectEnvelope(JSON.parse(text) as Record<string, any>, "VALIDATION_ERROR")
    expect(text).not.toContain(tmpdir())
    expect(text).not.toMatch(/\/tmp|\\Temp/)
  })

  it("a client that disconnects before the answer is logged as 499, not 500", async () => {
    const controller = new AbortController()
    const pending = fetch(base + "/slow", { headers: { "x-request-id": "client-gone-0001" }, signal: controller.signal }).catch(() => "aborted")
    await new Promise((r) => setTimeout(r, 300))
    controller.abort()
    expect(await pending).toBe("aborted")
    await waitFor(() => accessLines("client-gone-0001").length > 0)
    expect(accessLines("client-gone-0001")[0]).toMatchObject({ route: "/slow", status: 499 })
  })

  /** Writes raw bytes on a new connection; resolves with everything the server sent before closing. */
  const raw = (bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const url = new URL(base)
      const socket = net.connect(Number(url.port), url.hostname, () => socket.end(bytes))
      let received = ""
      socket.setEncoding("utf8")
      socket.on("data", (c: string) => (received += c))
      socket.on("close", () => resolve(received))
      socket.on("error", reject)
    })
  const parseRaw = (answer: string) => {
    const [head = "", body = ""] = answer.split("\r\n\r\n")
    const status = Number(head.split(" ")[1])
    return { status, head: head.toLowerCase(), body: JSON.parse(body) as Record<string, any> }
  }

  it("requests Node itself rejects get the error shape: unknown method, malformed request line, oversized headers", async () => {
    const cases: ReadonlyArray<[string, number, string]> = [
      ["FUZZ /items HTTP/1.1\r\nHost: x\r\n\r\n", 400, "MALFORMED_REQUEST"],
      ["GET /items HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "MALFORMED_REQUEST"],
      ["\u0001\u0002garbage\r\n\r\n", 400, "MALFORMED_REQUEST"],
      [`GET /items HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"]
    ]
    for (const [request, status, code] of cases) {
      const answer = parseRaw(await raw(request))
      expect(answer.status, request.slice(0, 30)).toBe(status)
      expect(answer.head).toContain("connection: close")
      expectEnvelope(answer.body, code)
      expect(answer.head).toContain(`x-request-id: ${answer.body["requestId"]}`)
      const requestId = String(answer.body["requestId"])
      await waitFor(() => accessLines(requestId).length > 0)
      expect(accessLines(requestId)[0]).toMatchObject({ status, code })
    }
    expect((await call("/missing")).status).toBe(404)
  })

  it("keeps a valid inbound X-Request-Id, replaces an invalid one, and logs one access line per request", async () => {
    const kept = await fetch(base + "/missing", { headers: { "x-request-id": "abc-123-def-456" } })
    expect(kept.headers.get("x-request-id")).toBe("abc-123-def-456")
    const replaced = await fetch(base + "/missing", { headers: { "x-request-id": "bad id with spaces" } })
    const replacedId = replaced.headers.get("x-request-id")
    expect(replacedId).not.toBe("bad id with spaces")
    expect(replacedId).toMatch(/^[0-9a-f-]{36}$/)
    const access = lines.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l["msg"] === "request" && l["requestId"] === "abc-123-def-456")
    expect(access).toHaveLength(1)
    expect(access[0]).toMatchObject({ method: "GET", route: "/missing", status: 404 })
    expect(typeof access[0]!["durationMs"]).toBe("number")
  })
})

describe("the real app's HTTP surface", () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp(testEnv({ BODY_LIMIT_BYTES: "4096" }))
  })
  afterAll(() => app?.close())

  it("serves OpenAPI 3.1 at /openapi.json and Swagger UI at /docs", async () => {
    const spec = (await fetch(app.url("/openapi.json")).then((r) => r.json())) as Record<string, any>
    expect(spec["openapi"]).toBe("3.1.0")
    expect(Object.keys(spec["paths"])).toEqual(expect.arrayContaining(["/health/liveness", "/health/readiness", "/health", "/api/health"]))
    const docs = await fetch(app.url("/docs"))
    expect(docs.status).toBe(200)
    expect(await docs.text()).toContain("swagger")
  })

  it("every response carries X-Request-Id and unknown routes answer the error shape", async () => {
    const r = await fetch(app.url("/api/nope"), { method: "POST", body: "x" })
    expect(r.status).toBe(404)
    expect(r.headers.get("x-request-id")).toMatch(/.{8,}/)
    const body = (await r.json()) as Record<string, unknown>
    expect(body).toMatchObject({ success: false, code: "NOT_FOUND", requestId: r.headers.get("x-request-id") })
  })

  it("refuses an oversized body with 413 on any route", async () => {
    const r = await fetch(app.url("/api/health"), { method: "POST", body: "x".repeat(5000) })
    expect(r.status).toBe(413)
  })
})
