import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { testEnv } from "../support/env.js"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"

/** The callback takes a form or JSON: request screening lets the form through and still screens JSON. */
describe("payment callback input", () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp(testEnv({ DUITKU_CALLBACK_IP_CHECK: "false" }))
  })
  afterAll(async () => {
    await app.close()
  })

  const post = async (body: string, headers: Record<string, string>) => {
    const response = await fetch(app.url("/api/payment/duitku/callback"), { method: "POST", headers, body })
    return { status: response.status, body: JSON.parse(await response.text()) as Record<string, unknown> }
  }

  it("takes a form body without an Origin (server to server): not 415, not 403", async () => {
    const r = await post("merchantCode=X&amount=1&merchantOrderId=Y&resultCode=00&signature=00", {
      "content-type": "application/x-www-form-urlencoded"
    })
    // No credentials in this app: the request reached the payment rules.
    expect(r.status).toBe(503)
    expect(r.body["code"]).toBe("PAYMENTS_NOT_CONFIGURED")
  })

  it("refuses a deeply nested or NUL-carrying JSON body with 400, never 500", async () => {
    const deep = "[".repeat(5000) + "]".repeat(5000)
    const nested = await post(`{"merchantCode":${deep}}`, { "content-type": "application/json" })
    expect(nested.status).toBe(400)
    expect(nested.body["code"]).toBe("MALFORMED_REQUEST")
    const nul = await post(`{"merchantCode":"a\\u0000b"}`, { "content-type": "application/json" })
    expect(nul.status).toBe(400)
    expect(nul.body["code"]).toBe("VALIDATION_ERROR")
  })

  it("documents the callback's two body types in OpenAPI", async () => {
    const spec = (await (await fetch(app.url("/openapi.json"))).json()) as { paths: Record<string, any> }
    const content = spec.paths["/api/payment/duitku/callback"].post.requestBody.content
    expect(Object.keys(content).sort()).toEqual(["application/json", "application/x-www-form-urlencoded"])
  })

  it("answers 400 to a body of another type, and 403 to a cross-site browser post", async () => {
    expect((await post("hello", { "content-type": "text/plain" })).status).toBe(400)
    const crossSite = await post("a=b", { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" })
    expect(crossSite.status).toBe(403)
  })
})
