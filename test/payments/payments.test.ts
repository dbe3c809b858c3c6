import { createHash } from "node:crypto"
import pg from "pg"
import { Queue } from "bullmq"
import { Context, Effect, Metric } from "effect"
import { Redis as IORedis } from "ioredis"
import { bullPrefix } from "../../src/services/jobs/queueNames.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { callbacksRejected, paymentsCreated, paymentsSucceeded } from "../../src/services/payments/metrics.js"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { inject } from "vitest"
import { Payments } from "../../src/services/payments/Payments.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { type DuitkuDouble, startDuitkuDouble } from "./duitkuDouble.js"

const PASSWORD = "Payments-Test-9xQ"
/** A sandbox callback address (duitkuFacts.ts); the test's peer 127.0.0.1 is the trusted proxy in front of it. */
const DUITKU_ADDRESS = "182.23.85.11"
const ADMIN_TOKEN = "admin-token-for-the-payments-tests-0123456789"

let duitku: DuitkuDouble
let db: pg.Client

const envFor = (double: DuitkuDouble, overrides: Record<string, string> = {}) =>
  testEnv({
    DUITKU_MERCHANT_CODE: double.merchantCode,
    DUITKU_API_KEY: double.apiKey,
    DUITKU_BASE_URL: double.baseUrl,
    DUITKU_CALLBACK_URL: "http://127.0.0.1/api/payment/duitku/callback",
    DUITKU_RETURN_URL: "http://127.0.0.1/credits",
    DUITKU_TIMEOUT: "800",
    TRUSTED_PROXIES: "127.0.0.1",
    RATE_LIMIT_REGISTER: "1000 per 1 minute",
    RATE_LIMIT_PAYMENT: "1000 per 1 minute",
    ADMIN_TOKEN,
    LOG_LEVEL: "info",
    ...overrides
  })

const register = async (app: InProcessApp) => {
  const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("payer"), password: PASSWORD })
  expect(r.status).toBe(201)
  return { token: r.body["data"].token as string, id: r.body["data"].user.id as string }
}

const balanceOf = async (userId: string) => Number((await db.query("SELECT balance FROM users WHERE id = $1", [userId])).rows[0].balance)
const purchases = async (userId: string) =>
  (await db.query("SELECT * FROM credit_ledger WHERE user_id = $1 AND kind = 'purchase'", [userId])).rows
const paymentRow = async (merchantOrderId: string) =>
  (await db.query("SELECT * FROM payments WHERE merchant_order_id = $1", [merchantOrderId])).rows[0]

const postCallback = async (app: InProcessApp, fields: Record<string, string>, forwardedFor: string | null = DUITKU_ADDRESS) => {
  const response = await fetch(app.url("/api/payment/duitku/callback"), {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(forwardedFor === null ? {} : { "x-forwarded-for": forwardedFor })
    },
    body: new URLSearchParams(fields).toString()
  })
  const text = await response.text()
  return { status: response.status, body: JSON.parse(text) as Record<string, any> }
}

const count = (metric: Metric.Metric.Counter<number>) => Effect.runSync(Metric.value(metric)).count

const create = (app: InProcessApp, token: string, body: Record<string, unknown> = { packageId: "pebisnis" }) =>
  call(app, "POST", "/api/payment/duitku/create", body, bearer(token))

beforeAll(async () => {
  duitku = await startDuitkuDouble()
  db = new pg.Client({ connectionString: inject("databaseUrl") })
  await db.connect()
})

afterAll(async () => {
  await duitku.close()
  await db.end()
})

describe("payments", () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp(envFor(duitku))
  })
  afterAll(async () => {
    await app.close()
  })
  beforeEach(() => {
    duitku.mode = "ok"
    duitku.statusMode = "ok"
  })

  it("lists the server's packages", async () => {
    const r = await call(app, "GET", "/api/payment/packages")
    expect(r.status).toBe(200)
    expect(r.body["data"].packages).toEqual([
      { id: "pebisnis", name: "Pebisnis", kind: "subscription", amount: 99000, credits: 1800 },
      { id: "juragan", name: "Juragan", kind: "subscription", amount: 249000, credits: 4800 },
      { id: "topup-1500", name: "Top up 1,500 credits", kind: "topup", amount: 100000, credits: 1500 },
      { id: "topup-4000", name: "Top up 4,000 credits", kind: "topup", amount: 250000, credits: 4000 },
      { id: "topup-9000", name: "Top up 9,000 credits", kind: "topup", amount: 500000, credits: 9000 }
    ])
  })

  it("happy path: create, a paid form callback, the balance up by the package's credits, one ledger row", async () => {
    const user = await register(app)
    const [created, succeeded] = [count(paymentsCreated), count(paymentsSucceeded)]
    // What the old web app sends, all of it agreeing with the package.
    const r = await create(app, user.token, { packageId: "pebisnis", credits: 1800, amount: 99000, productName: "Paket Pebisnis", type: "subscription" })
    expect(r.status).toBe(200)
    expect(r.body["success"]).toBe(true)
    expect(r.body["paymentUrl"]).toMatch(/^https:\/\/sandbox\.duitku\.com\//)
    expect(r.body["data"]).toMatchObject({ paymentUrl: r.body["paymentUrl"], reference: r.body["reference"], amount: 99000, credits: 1800 })
    const merchantOrderId = r.body["merchantOrderId"] as string
    expect(merchantOrderId).toMatch(/^LMK-[0-9a-f]{32}$/)
    expect(merchantOrderId).not.toContain(user.id.slice(0, 8))
    // The gateway was asked for the package's price, signed by the server.
    const inquiry = duitku.inquiries.find((i) => i["merchantOrderId"] === merchantOrderId)!
    expect(inquiry["paymentAmount"]).toBe(99000)
    expect(inquiry["expiryPeriod"]).toBe(1440)
    expect((await paymentRow(merchantOrderId)).status).toBe("pending")

    duitku.setStatus(merchantOrderId, "00")
    const cb = await postCallback(app, duitku.callbackFields(merchantOrderId))
    expect(cb.status).toBe(200)
    expect(cb.body).toEqual({ success: true, status: "success", merchantOrderId })
    expect(await balanceOf(user.id)).toBe(100 + 1800)
    const rows = await purchases(user.id)
    expect(rows).toHaveLength(1)
    expect(rows[0].idempotency_key).toBe((await paymentRow(merchantOrderId)).id)

    const status = await call(app, "GET", `/api/payment/status/${merchantOrderId}`, undefined, bearer(user.token))
    expect(status.status).toBe(200)
    expect(status.body["data"]).toMatchObject({ merchantOrderId, status: "success", amount: 99000, credits: 1800 })

    expect(count(paymentsCreated)).toBe(created + 1)
    expect(count(paymentsSucceeded)).toBe(succeeded + 1)
    // Every state change is logged with the payment id and merchantOrderId; never the API key or a signature.
    const paymentId = (await paymentRow(merchantOrderId)).id as string
    const lines = app.logLines().map((l) => JSON.parse(l) as Record<string, unknown>)
    for (const msg of ["payment created; asking the gateway", "payment awaiting the buyer", "payment succeeded; credits granted"]) {
      expect(lines.find((l) => l["msg"] === msg && l["paymentId"] === paymentId && l["merchantOrderId"] === merchantOrderId), msg).toBeDefined()
    }
    const signature = duitku.callbackFields(merchantOrderId)["signature"]!
    expect(app.logLines().some((l) => l.includes(duitku.apiKey) || l.includes(signature))).toBe(false)
  })

  it("accepts the callback as JSON too", async () => {
    const user = await register(app)
    const r = await create(app, user.token, { packageId: "topup-1500" })
    const merchantOrderId = r.body["merchantOrderId"] as string
    duitku.setStatus(merchantOrderId, "00")
    const fields = { ...duitku.callbackFields(merchantOrderId), amount: undefined } as Record<string, unknown>
    const response = await call(app, "POST", "/api/payment/duitku/callback", { ...fields, amount: 100000 }, { "x-forwarded-for": DUITKU_ADDRESS })
    expect(response.status).toBe(200)
    expect(await balanceOf(user.id)).toBe(100 + 1500)
  })

  it("refuses a forged price or credit count (400 PRICE_MISMATCH) and an unknown package (400 UNKNOWN_PACKAGE), storing nothing", async () => {
    const user = await register(app)
    for (const forged of [
      { packageId: "topup-9000", amount: 10000 },
      { packageId: "topup-9000", credits: 1_000_000 },
      { packageId: "topup-9000", amount: 500000.5 },
      { packageId: "topup-9000", type: "subscription" }
    ]) {
      const r = await create(app, user.token, forged)
      expect(r.status, JSON.stringify(forged)).toBe(400)
      expect(r.body["code"]).toBe("PRICE_MISMATCH")
    }
    const anonymous = await call(app, "POST", "/api/payment/duitku/create", { packageId: "topup-9000" })
    expect(anonymous.status).toBe(401)
    const unknown = await create(app, user.token, { packageId: "free-credits" })
    expect(unknown.status).toBe(400)
    expect(unknown.body["code"]).toBe("UNKNOWN_PACKAGE")
    expect((await db.query("SELECT count(*)::int AS n FROM payments WHERE user_id = $1", [user.id])).rows[0].n).toBe(0)
    expect(duitku.inquiries.some((i) => i["paymentAmount"] === 10000)).toBe(false)
  })

  it("refuses tampered callbacks (401/400, never 500) and changes no balance", async () => {
    const user = await register(app)
    const r = await create(app, user.token, { packageId: "juragan" })
    const merchantOrderId = r.body["merchantOrderId"] as string
    const other = (await create(app, user.token, { packageId: "juragan" })).body["merchantOrderId"] as string
    duitku.setStatus(merchantOrderId, "00")
    const good = duitku.callbackFields(merchantOrderId)
    const signatureRejections = count(Metric.tagged(callbacksRejected, "reason", "signature"))
    const cases: Array<[string, Record<string, string>, number]> = [
      ["changed amount", { ...good, amount: "1000" }, 401],
      ["changed orderId", { ...good, merchantOrderId: other }, 401],
      ["wrong merchantCode", { ...good, merchantCode: "D9999" }, 401],
      ["short signature", { ...good, signature: good["signature"]!.slice(0, 31) }, 401],
      ["long signature", { ...good, signature: `${good["signature"]}00` }, 401],
      ["non-hex signature", { ...good, signature: "z".repeat(32) }, 401],
      ["empty signature", { ...good, signature: "" }, 401],
      ["no signature", Object.fromEntries(Object.entries(good).filter(([k]) => k !== "signature")), 401],
      ["no resultCode", Object.fromEntries(Object.entries(good).filter(([k]) => k !== "resultCode")), 400]
    ]
    for (const [name, fields, status] of cases) {
      const cb = await postCallback(app, fields)
      expect(cb.status, name).toBe(status)
      expect(cb.body["success"], name).toBe(false)
      expect(typeof cb.body["requestId"], name).toBe("string")
    }
    // A correctly signed callback for an order that does not exist: 404.
    const ghostId = "LMK-00000000000000000000000000000000"
    const ghost = await postCallback(app, {
      ...good,
      merchantOrderId: ghostId,
      signature: createHash("md5").update(`${duitku.merchantCode}${good["amount"]}${ghostId}${duitku.apiKey}`).digest("hex")
    })
    expect(ghost.status).toBe(404)
    expect(ghost.body["code"]).toBe("PAYMENT_NOT_FOUND")
    // A correctly signed callback for another amount than the payment's: 400.
    const resigned = duitku.callbackFields(merchantOrderId, "00", { amount: "1000" })
    const mismatch = await postCallback(app, resigned)
    expect(mismatch.status).toBe(400)
    expect(mismatch.body["code"]).toBe("AMOUNT_MISMATCH")
    expect(await balanceOf(user.id)).toBe(100)
    expect(await purchases(user.id)).toHaveLength(0)
    expect((await paymentRow(merchantOrderId)).status).toBe("pending")
    expect(count(Metric.tagged(callbacksRejected, "reason", "signature"))).toBe(signatureRejections + 7)
    // Each was recorded for audit, without its signature.
    const recorded = (await db.query("SELECT outcome, fields FROM payment_callbacks WHERE merchant_order_id = $1", [merchantOrderId])).rows
    expect(recorded.map((row) => row.outcome)).toContain("rejected:signature")
    expect(recorded.map((row) => row.outcome)).toContain("rejected:amount")
    for (const row of recorded) expect(row.fields).not.toHaveProperty("signature")
  })

  it("grants once for 5 concurrent identical callbacks, every one answered 200", async () => {
    const user = await register(app)
    const merchantOrderId = (await create(app, user.token, { packageId: "topup-4000" })).body["merchantOrderId"] as string
    duitku.setStatus(merchantOrderId, "00")
    const fields = duitku.callbackFields(merchantOrderId)
    const answers = await Promise.all(Array.from({ length: 5 }, () => postCallback(app, fields)))
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200])
    expect(answers.every((a) => a.body["status"] === "success")).toBe(true)
    expect(await balanceOf(user.id)).toBe(100 + 4000)
    expect(await purchases(user.id)).toHaveLength(1)
    // success never turns into failed
    const failed = await postCallback(app, duitku.callbackFields(merchantOrderId, "01"))
    expect(failed.status).toBe(200)
    expect(failed.body["status"]).toBe("success")
    expect((await paymentRow(merchantOrderId)).status).toBe("success")
  })

  it("marks a payment failed on resultCode 01, once", async () => {
    const user = await register(app)
    const merchantOrderId = (await create(app, user.token)).body["merchantOrderId"] as string
    const cb = await postCallback(app, duitku.callbackFields(merchantOrderId, "01"))
    expect(cb.status).toBe(200)
    expect(cb.body["status"]).toBe("failed")
    expect(await balanceOf(user.id)).toBe(100)
    // Money arriving afterwards is not granted silently: it is answered, recorded and logged for an operator.
    duitku.setStatus(merchantOrderId, "00")
    const paid = await postCallback(app, duitku.callbackFields(merchantOrderId))
    expect(paid.status).toBe(200)
    expect(paid.body["status"]).toBe("failed")
    expect(await balanceOf(user.id)).toBe(100)
    const outcomes = (await db.query("SELECT outcome FROM payment_callbacks WHERE merchant_order_id = $1 ORDER BY id", [merchantOrderId])).rows
    expect(outcomes.map((row) => row.outcome)).toEqual(["failed", "paid_after_failure"])
    expect(app.logLines().some((l) => l.includes("paid callback for a failed payment") && l.includes(merchantOrderId))).toBe(true)
  })

  it("refuses callbacks from other addresses, an allowed address in the leftmost X-Forwarded-For included (403)", async () => {
    const user = await register(app)
    const merchantOrderId = (await create(app, user.token)).body["merchantOrderId"] as string
    duitku.setStatus(merchantOrderId, "00")
    const fields = duitku.callbackFields(merchantOrderId)
    for (const forwardedFor of [null, "203.0.113.7", `${DUITKU_ADDRESS}, 203.0.113.7`, "182.23.85.8"]) {
      const cb = await postCallback(app, fields, forwardedFor)
      expect(cb.status, String(forwardedFor)).toBe(403)
      expect(cb.body["code"]).toBe("CALLBACK_SOURCE_REFUSED")
    }
    expect(await balanceOf(user.id)).toBe(100)
    // The proxy's own hop for a Duitku address is believed.
    expect((await postCallback(app, fields, `203.0.113.7, ${DUITKU_ADDRESS}`)).status).toBe(200)
  })

  it("answers 502 within the timeout when the gateway is slow or failing, marks the row failed, and the next create succeeds", async () => {
    const user = await register(app)
    duitku.mode = "slow"
    const started = Date.now()
    const slow = await create(app, user.token)
    const elapsed = Date.now() - started
    expect(slow.status).toBe(502)
    expect(slow.body["code"]).toBe("PAYMENT_GATEWAY_ERROR")
    expect(elapsed).toBeLessThan(800 + 1_500)
    duitku.mode = "error"
    const failing = await create(app, user.token)
    expect(failing.status).toBe(502)
    const rows = (await db.query("SELECT status, reference FROM payments WHERE user_id = $1", [user.id])).rows
    expect(rows).toEqual([{ status: "failed", reference: null }, { status: "failed", reference: null }])
    duitku.mode = "ok"
    const next = await create(app, user.token)
    expect(next.status).toBe(200)
    // Nothing listening at all.
    const unreachable = await startApp(envFor(duitku, { DUITKU_BASE_URL: "http://127.0.0.1:1" }))
    try {
      const down = await create(unreachable, (await register(unreachable)).token)
      expect(down.status).toBe(502)
      expect(down.body["code"]).toBe("PAYMENT_GATEWAY_ERROR")
    } finally {
      await unreachable.close()
    }
  })

  it("shows a payment's status only to its owner (404 for anyone else)", async () => {
    const owner = await register(app)
    const stranger = await register(app)
    const merchantOrderId = (await create(app, owner.token)).body["merchantOrderId"] as string
    const theirs = await call(app, "GET", `/api/payment/status/${merchantOrderId}`, undefined, bearer(stranger.token))
    expect(theirs.status).toBe(404)
    const missing = await call(app, "GET", "/api/payment/status/LMK-0000", undefined, bearer(owner.token))
    expect(missing.status).toBe(404)
    expect(theirs.body["code"]).toBe(missing.body["code"])
    const anonymous = await call(app, "GET", `/api/payment/status/${merchantOrderId}`)
    expect(anonymous.status).toBe(401)
  })

  it("caps a user's pending payments", async () => {
    const capped = await startApp(envFor(duitku, { PAYMENT_MAX_PENDING: "2" }))
    try {
      const user = await register(capped)
      expect((await create(capped, user.token)).status).toBe(200)
      expect((await create(capped, user.token)).status).toBe(200)
      const third = await create(capped, user.token)
      expect(third.status).toBe(409)
      expect(third.body["code"]).toBe("TOO_MANY_PENDING_PAYMENTS")
    } finally {
      await capped.close()
    }
  })

  it("rate limits creation per user (RATE_LIMIT_PAYMENT)", async () => {
    const limited = await startApp(envFor(duitku, { RATE_LIMIT_PAYMENT: "2 per 1 minute" }))
    try {
      const user = await register(limited)
      expect((await create(limited, user.token)).status).toBe(200)
      expect((await create(limited, user.token)).status).toBe(200)
      const third = await create(limited, user.token)
      expect(third.status).toBe(429)
      expect(third.body["code"]).toBe("RATE_LIMITED")
    } finally {
      await limited.close()
    }
  })

  it("with status verification, does not grant a paid callback the gateway does not confirm (409), nor when it cannot answer (502)", async () => {
    const user = await register(app)
    const merchantOrderId = (await create(app, user.token)).body["merchantOrderId"] as string
    const fields = duitku.callbackFields(merchantOrderId) // the double still reports it pending
    const unconfirmed = await postCallback(app, fields)
    expect(unconfirmed.status).toBe(409)
    expect(unconfirmed.body["code"]).toBe("STATUS_NOT_CONFIRMED")
    // The status API reporting another amount does not confirm it either.
    duitku.setStatus(merchantOrderId, "00", 1000)
    expect((await postCallback(app, fields)).status).toBe(409)
    duitku.setStatus(merchantOrderId, "00")
    duitku.statusMode = "error"
    expect((await postCallback(app, fields)).status).toBe(502)
    expect(await balanceOf(user.id)).toBe(100)
    duitku.statusMode = "ok"
    expect((await postCallback(app, fields)).status).toBe(200)
    expect(await balanceOf(user.id)).toBe(100 + 1800)
  })

  it("expires pending payments past their expiry and reconciles pending ones with the status API", async () => {
    const user = await register(app)
    const ids = []
    for (let i = 0; i < 3; i++) ids.push((await create(app, user.token, { packageId: "topup-1500" })).body["merchantOrderId"] as string)
    const [stale, paid, refused] = ids as [string, string, string]
    // Old enough to reconcile; the first also past its expiry.
    await db.query("UPDATE payments SET created_at = now() - interval '2 hours' WHERE merchant_order_id = ANY($1)", [ids])
    await db.query("UPDATE payments SET expires_at = now() - interval '1 minute' WHERE merchant_order_id = $1", [stale])
    duitku.setStatus(paid, "00")
    duitku.setStatus(refused, "02")
    const maintain = Effect.runPromise(Effect.provide(Effect.flatMap(Payments, (p) => p.maintain()), app.context))
    const result = await maintain
    expect(result).toMatchObject({ succeeded: 1, failed: 1 })
    expect(result.expired).toBeGreaterThanOrEqual(1)
    expect((await paymentRow(stale)).status).toBe("expired")
    expect((await paymentRow(paid)).status).toBe("success")
    expect((await paymentRow(refused)).status).toBe("failed")
    expect(await balanceOf(user.id)).toBe(100 + 1500)
    // Again, and a replayed callback: still one grant.
    await Effect.runPromise(Effect.provide(Effect.flatMap(Payments, (p) => p.maintain()), app.context))
    expect((await postCallback(app, duitku.callbackFields(paid))).status).toBe(200)
    expect(await balanceOf(user.id)).toBe(100 + 1500)
    expect(await purchases(user.id)).toHaveLength(1)
    // A late paid callback for the expired payment is honoured: the money arrived.
    duitku.setStatus(stale, "00")
    expect((await postCallback(app, duitku.callbackFields(stale))).status).toBe(200)
    expect(await balanceOf(user.id)).toBe(100 + 3000)
  })

  it("lets an administrator list payments by status and read one with its callbacks", async () => {
    const user = await register(app)
    const merchantOrderId = (await create(app, user.token)).body["merchantOrderId"] as string
    duitku.setStatus(merchantOrderId, "00")
    await postCallback(app, duitku.callbackFields(merchantOrderId))
    const paymentId = (await paymentRow(merchantOrderId)).id as string
    const list = await call(app, "GET", "/api/admin/payments?status=success&limit=100", undefined, bearer(ADMIN_TOKEN))
    expect(list.status).toBe(200)
    expect(list.body["items"].some((p: { paymentId: string }) => p.paymentId === paymentId)).toBe(true)
    expect(list.body["items"].every((p: { status: string }) => p.status === "success")).toBe(true)
    const one = await call(app, "GET", `/api/admin/payments/${paymentId}`, undefined, bearer(ADMIN_TOKEN))
    expect(one.status).toBe(200)
    expect(one.body["payment"]).toMatchObject({ merchantOrderId, status: "success", userId: user.id, paymentMethod: "VC" })
    expect(one.body["callbacks"]).toHaveLength(1)
    expect(one.body["callbacks"][0]).toMatchObject({ outcome: "granted", sourceAddress: DUITKU_ADDRESS })
    expect(one.body["callbacks"][0].fields).not.toHaveProperty("signature")
    expect((await call(app, "GET", "/api/admin/payments", undefined, bearer(user.token))).status).toBe(401)
  })
})

describe("payments across a restart", () => {
  it("answers a replayed callback 200 after the app restarts, and grants nothing more", async () => {
    const first = await startApp(envFor(duitku))
    let user: { token: string; id: string }
    let fields: Record<string, string>
    try {
      user = await register(first)
      const merchantOrderId = (await create(first, user.token)).body["merchantOrderId"] as string
      duitku.setStatus(merchantOrderId, "00")
      fields = duitku.callbackFields(merchantOrderId)
      expect((await postCallback(first, fields)).status).toBe(200)
    } finally {
      await first.close()
    }
    const second = await startApp(envFor(duitku))
    try {
      const replay = await postCallback(second, fields)
      expect(replay.status).toBe(200)
      expect(replay.body["status"]).toBe("success")
      expect(await balanceOf(user.id)).toBe(100 + 1800)
      expect(await purchases(user.id)).toHaveLength(1)
    } finally {
      await second.close()
    }
  })

  it("expires on its own: the periodic job runs on the job system", async () => {
    const app = await startApp(envFor(duitku, { PAYMENT_RECONCILE_INTERVAL: "300", DUITKU_VERIFY_STATUS: "false" }))
    try {
      const user = await register(app)
      const merchantOrderId = (await create(app, user.token)).body["merchantOrderId"] as string
      await db.query("UPDATE payments SET expires_at = now() - interval '1 minute' WHERE merchant_order_id = $1", [merchantOrderId])
      await waitUntil(async () => (await paymentRow(merchantOrderId)).status === "expired", 10_000)
      // One BullMQ job scheduler, at the configured interval.
      const config = Context.get(app.context, AppConfig)
      const connection = new IORedis({ host: config.redis.host, port: config.redis.port, maxRetriesPerRequest: null })
      const queue = new Queue("payment-maintenance", { connection, prefix: bullPrefix(config) })
      try {
        const schedulers = await queue.getJobSchedulers()
        expect(schedulers.map((s) => [s.key, s.every])).toEqual([["payment-maintenance", 300]])
      } finally {
        await queue.close()
        await connection.quit()
      }
    } finally {
      await app.close()
    }
  })
})

describe("payments without credentials", () => {
  it("answers 503 on the payment routes while the rest of the API works", async () => {
    const app = await startApp(testEnv({ RATE_LIMIT_REGISTER: "1000 per 1 minute" }))
    try {
      const user = await register(app)
      const r = await create(app, user.token)
      expect(r.status).toBe(503)
      expect(r.body["code"]).toBe("PAYMENTS_NOT_CONFIGURED")
      expect((await call(app, "GET", "/api/credits/balance", undefined, bearer(user.token))).status).toBe(200)
    } finally {
      await app.close()
    }
  })
})
