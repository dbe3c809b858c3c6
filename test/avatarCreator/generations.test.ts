import { Effect, Option } from "effect"
import pg from "pg"
import sharp from "sharp"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { AvatarGenerationJob } from "../../src/services/avatarCreator/AvatarCreatorApp.js"
import { JobQueues } from "../../src/services/jobs/JobQueues.js"
import { call } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { type HfDouble, startHfDouble } from "../images/hfDouble.js"
import { BASE, helpers } from "./support.js"

const ADMIN_TOKEN = "avatar-admin-token-0123456789abcdefghijklmnopq"
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe("Avatar Creator generations, with a local double of the Hugging Face API", () => {
  let app: InProcessApp
  let db: pg.Pool
  let hf: HfDouble
  const h = helpers(() => app, () => db)

  const generation = async (token: string, id: string) => (await h.api("GET", `/generations/${id}`, token)).body["generation"]
  const settled = async (token: string, id: string, status: string) => {
    await waitUntil(async () => (await generation(token, id))?.status === status, 30_000)
    return generation(token, id)
  }
  const generate = (token: string, projectId: string, body: Record<string, unknown> = {}) =>
    h.api("POST", `/projects/${projectId}/avatars/generate`, token, {
      prompt: "a friendly portrait of a software engineer",
      name: "Engineer",
      gender: "female",
      ...body
    })

  beforeAll(async () => {
    hf = await startHfDouble()
    app = await startApp(testEnv({
      ADMIN_TOKEN,
      HF_TOKEN: hf.token,
      HF_BASE_URL: hf.baseUrl,
      HF_REFERENCE_MODEL: "black-forest-labs/FLUX.1-Kontext-dev",
      HF_TIMEOUT: "1 second",
      JOB_TIMEOUT_RETRY_DELAY: "100 millis",
      JOB_TIMEOUT_ATTEMPTS: "2",
      JOB_RATE_LIMIT_MIN_DELAY: "100 millis",
      JOB_TRANSIENT_BASE_DELAY: "100 millis",
      RATE_LIMIT_REGISTER: "1000 per 1 minute",
      RATE_LIMIT_GENERAL: "10000 per 1 minute",
      LOG_LEVEL: "info"
    }))
    db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
  })
  afterAll(async () => {
    await db?.end()
    await app?.close()
    await hf?.close()
  })

  it("a text prompt charges 10 in the create, completes with the picture and a 300x300 thumbnail, served to the owner only", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    hf.script({ kind: "image", format: "jpeg" })
    const started = await generate(user.token, projectId)
    expect(started.status).toBe(201)
    expect(started.body).toMatchObject({ success: true, creditUsed: 10, creditBalance: 90 })
    expect(started.body["generation"]).toMatchObject({ status: "pending", projectId, avatarId: null, prompt: "a friendly portrait of a software engineer" })
    const done = await settled(user.token, started.body["generation"].id, "completed")
    expect(done.avatarId).toMatch(UUID)
    expect(await h.balance(user.id)).toBe(90)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10"])

    const avatar = (await h.api("GET", `/avatars/${done.avatarId}`, user.token)).body["avatar"]
    expect(avatar).toMatchObject({ name: "Engineer", gender: "female", sourceType: "text_to_image", projectId, usageCount: 0 })
    const image = await h.download(user.token, avatar.baseImageUrl)
    expect(image.status).toBe(200)
    expect(image.headers.get("content-type")).toBe("image/jpeg")
    expect((await sharp(image.bytes).metadata()).format).toBe("jpeg")
    const thumb = await h.download(user.token, avatar.thumbnailUrl)
    const meta = await sharp(thumb.bytes).metadata()
    expect(meta).toMatchObject({ format: "jpeg", width: 300, height: 300 })

    // In the project, in GET /avatars (the Pose Generator's list), never another user's.
    expect((await h.api("GET", `/projects/${projectId}`, user.token)).body["project"].avatars.map((a: { id: string }) => a.id)).toEqual([done.avatarId])
    expect((await h.api("GET", "/avatars", user.token)).body).toMatchObject({ success: true, avatars: [{ id: done.avatarId }] })
    const other = await h.newUser()
    expect((await h.api("GET", "/avatars", other.token)).body["avatars"]).toEqual([])
    expect((await h.download(other.token, avatar.baseImageUrl)).status).toBe(404)
    expect((await h.download(other.token, avatar.thumbnailUrl)).status).toBe(404)

    // The provider got the prompt with the bearer token; the token is in no log line, nor any user's.
    expect(hf.calls.at(-1)).toMatchObject({ authorization: `Bearer ${hf.token}`, body: { inputs: "a friendly portrait of a software engineer" } })
    const logs = app.logLines().join("\n")
    expect(logs).not.toContain(hf.token)
    expect(logs).not.toContain(user.token)
    expect(logs).not.toMatch(/authorization":\s*"Bearer/i)
  })

  it("a model loading (503) and a 429 are retried after their delays, and a success after them refunds nothing", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const before = hf.calls.length
    hf.script({ kind: "loading", estimatedTime: 0.3 }, { kind: "rateLimited", retryAfter: 1 }, { kind: "image" })
    const started = await generate(user.token, projectId)
    expect(started.status).toBe(201)
    const done = await settled(user.token, started.body["generation"].id, "completed")
    expect(hf.calls.length - before).toBe(3)
    expect(done.creditUsed).toBe(10)
    expect(await h.balance(user.id)).toBe(90)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10"])
  })

  it("a refusal (400 NSFW) fails for good: dead-lettered, refunded exactly once, the reason shown, no avatar", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    hf.script({ kind: "refused", error: "Prompt flagged as NSFW" })
    const started = await generate(user.token, projectId)
    const id = started.body["generation"].id as string
    const failed = await settled(user.token, id, "failed")
    expect(failed.errorMessage).toBe("The image service refused the request: Prompt flagged as NSFW Your credits were refunded.")
    expect(failed.avatarId).toBeNull()
    await waitUntil(async () => (await h.balance(user.id)) === 100, 10_000)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10", "refund:10"])
    const letter = await h.run(Effect.flatMap(JobQueues, (q) => Effect.option(q.deadLetters.get(AvatarGenerationJob.queue, id))))
    expect(Option.isSome(letter) && letter.value.jobClass).toBe("permanent")
    expect((await h.api("GET", "/avatars", user.token)).body["avatars"]).toEqual([])
    // The dead-letter admin follows the Generations rule: a settled (refunded) generation is not re-run for free.
    const retry = await fetch(app.url(`/api/admin/queues/${AvatarGenerationJob.queue}/dead-letters/${id}/retry`), {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` }
    })
    expect(retry.status).toBe(409)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10", "refund:10"])
  })

  it("an answer that is not an image is permanent and refunded once", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    hf.script({ kind: "garbage" })
    const started = await generate(user.token, projectId)
    await settled(user.token, started.body["generation"].id, "failed")
    await waitUntil(async () => (await h.balance(user.id)) === 100, 10_000)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10", "refund:10"])
  })

  it("a provider that hangs times out, is retried (no refund in between), then fails for good and is refunded once", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const before = hf.calls.length
    hf.script({ kind: "hang" }, { kind: "hang" })
    const started = await generate(user.token, projectId)
    const id = started.body["generation"].id as string
    await waitUntil(async () => hf.calls.length - before >= 2, 20_000)
    // The second attempt is running: the first timeout refunded nothing.
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10"])
    const failed = await settled(user.token, id, "failed")
    expect(failed.errorMessage).toMatch(/took too long/)
    await waitUntil(async () => (await h.balance(user.id)) === 100, 10_000)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10", "refund:10"])
  })

  it("a cancelled generation is refunded once, and its late completion changes nothing", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const before = hf.calls.length
    hf.script({ kind: "hang" })
    const started = await generate(user.token, projectId)
    const id = started.body["generation"].id as string
    await waitUntil(async () => hf.calls.length > before, 10_000)
    const cancel = await call(app, "POST", `/api/generations/${id}/cancel`, undefined, user.auth)
    expect(cancel.status).toBe(200)
    expect((await generation(user.token, id)).status).toBe("cancelled")
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10", "refund:10"])
    expect((await call(app, "POST", `/api/generations/${id}/cancel`, undefined, user.auth)).status).toBe(409)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-10", "refund:10"])
  })

  it("concurrent generations charge exactly what the balance covers: the rest are 402 with nothing stored", async () => {
    const user = await h.newUser(25)
    const projectId = await h.newProject(user.token)
    const results = await Promise.all(Array.from({ length: 3 }, () => generate(user.token, projectId)))
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 402])
    expect(results.find((r) => r.status === 402)?.body).toMatchObject({ code: "INSUFFICIENT_CREDITS", required: 10, current: 5 })
    expect(await h.balance(user.id)).toBe(5)
    const rows = await db.query("SELECT id FROM generations WHERE user_id = $1", [user.id])
    expect(rows.rows).toHaveLength(2)
    for (const started of results.filter((r) => r.status === 201)) await settled(user.token, started.body["generation"].id, "completed")
    expect(await h.balance(user.id)).toBe(5)
  })

  it("enterprise users are charged 0 and never refunded anything", async () => {
    const user = await h.newUser(100, true)
    const projectId = await h.newProject(user.token)
    hf.script({ kind: "refused", error: "bad prompt" })
    const started = await generate(user.token, projectId)
    expect(started.body).toMatchObject({ creditUsed: 0, creditBalance: 100 })
    await settled(user.token, started.body["generation"].id, "failed")
    expect(await h.balance(user.id)).toBe(100)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:0"])
    const stats = await h.api("GET", "/stats", user.token)
    expect(stats.body).toMatchObject({ success: true, balance: 100, isEnterprise: true, costs: { upload: 2, generate: 10, preset: 8, reference: 12 } })
  })

  it("a preset from the list can be used (UUID ids, validated as UUIDs): 8 credits, its prompt sent", async () => {
    const presets = await call(app, "GET", `${BASE}/presets`)
    expect(presets.status).toBe(200)
    expect(presets.body["presets"].length).toBeGreaterThanOrEqual(10)
    for (const preset of presets.body["presets"]) expect(preset.id).toMatch(UUID)
    const categories = new Set(presets.body["presets"].map((p: { category: string }) => p.category))
    expect([...categories].sort()).toEqual(["casual", "fashion", "professional", "sports", "traditional"])
    const sports = await call(app, "GET", `${BASE}/presets?category=sports`)
    expect(sports.body["presets"].every((p: { category: string }) => p.category === "sports")).toBe(true)
    expect((await call(app, "GET", `${BASE}/presets?category=space`)).status).toBe(400)

    const chosen = presets.body["presets"][0]
    expect((await call(app, "GET", `${BASE}/presets/${chosen.id}`)).body["preset"]).toMatchObject({ id: chosen.id, prompt: chosen.prompt })
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const started = await h.api("POST", `/projects/${projectId}/avatars/from-preset`, user.token, { presetId: chosen.id, customName: "Boss" })
    expect(started.status).toBe(201)
    expect(started.body).toMatchObject({ creditUsed: 8, creditBalance: 92 })
    const done = await settled(user.token, started.body["generation"].id, "completed")
    expect(hf.calls.at(-1)?.body["inputs"]).toBe(chosen.prompt)
    const avatar = (await h.api("GET", `/avatars/${done.avatarId}`, user.token)).body["avatar"]
    expect(avatar).toMatchObject({ name: "Boss", sourceType: "from_preset", presetId: chosen.id })

    const unknown = await h.api("POST", `/projects/${projectId}/avatars/from-preset`, user.token, { presetId: "00000000-0000-4000-8000-000000000000" })
    expect(unknown.status).toBe(404)
    const cuid = await h.api("POST", `/projects/${projectId}/avatars/from-preset`, user.token, { presetId: "clh3x9k2p0000qzrmn8g1x2y3" })
    expect(cuid.status).toBe(400)
    expect(cuid.body).toMatchObject({ success: false, code: "VALIDATION_ERROR" })
    expect(await h.balance(user.id)).toBe(92)
  })

  it("a generation from a reference avatar costs 12, sends the picture, and appears in its usage history", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const first = await generate(user.token, projectId)
    const done = await settled(user.token, first.body["generation"].id, "completed")
    const started = await generate(user.token, projectId, { referenceAvatarId: done.avatarId, name: "Variant" })
    expect(started.status).toBe(201)
    expect(started.body).toMatchObject({ creditUsed: 12, creditBalance: 78 })
    const second = await settled(user.token, started.body["generation"].id, "completed")
    expect(hf.calls.at(-1)?.model).toBe("black-forest-labs/FLUX.1-Kontext-dev")
    expect(typeof hf.calls.at(-1)?.body["inputs"]).toBe("string")
    expect((await h.api("GET", `/avatars/${second.avatarId}`, user.token)).body["avatar"].sourceType).toBe("from_reference")
    const usage = await h.api("GET", `/avatars/${done.avatarId}/usage-history`, user.token)
    expect(usage.body).toMatchObject({
      success: true,
      history: [{ appId: "avatar-creator", action: "reference", referenceId: started.body["generation"].id }],
      summary: { totalUsage: 1, byApp: [{ appId: "avatar-creator", count: 1 }] }
    })
  })

  it("every id is the caller's: another user's project, avatar, generation answers 404 and charges nothing", async () => {
    const owner = await h.newUser(100)
    const projectId = await h.newProject(owner.token)
    const started = await generate(owner.token, projectId)
    const done = await settled(owner.token, started.body["generation"].id, "completed")
    const thief = await h.newUser(100)
    const attempts = [
      await h.api("GET", `/projects/${projectId}`, thief.token),
      await h.api("PUT", `/projects/${projectId}`, thief.token, { name: "mine" }),
      await h.api("DELETE", `/projects/${projectId}`, thief.token),
      await generate(thief.token, projectId),
      await h.api("POST", `/projects/${projectId}/avatars/from-preset`, thief.token, {
        presetId: (await call(app, "GET", `${BASE}/presets`)).body["presets"][0].id
      }),
      await h.api("GET", `/generations/${started.body["generation"].id}`, thief.token),
      await h.api("GET", `/avatars/${done.avatarId}`, thief.token),
      await h.api("PUT", `/avatars/${done.avatarId}`, thief.token, { name: "mine" }),
      await h.api("DELETE", `/avatars/${done.avatarId}`, thief.token),
      await h.api("GET", `/avatars/${done.avatarId}/usage-history`, thief.token)
    ]
    for (const attempt of attempts) {
      expect(attempt.status).toBe(404)
      expect(attempt.body).toMatchObject({ success: false })
      expect(attempt.body["error"]).toBe(attempt.body["message"])
      expect(typeof attempt.body["requestId"]).toBe("string")
    }
    const thiefProject = await h.newProject(thief.token)
    expect((await generate(thief.token, thiefProject, { referenceAvatarId: done.avatarId })).status).toBe(404)
    expect(await h.balance(thief.id)).toBe(100)
    expect((await h.api("GET", `/avatars/${done.avatarId}`, owner.token)).status).toBe(200)
    expect((await h.api("GET", `/projects/${projectId}`, owner.token)).body["project"].name).toBe("My avatars")
  })

  it("validation: prompt length, names, enums, dimensions, types and NUL bytes are 400 and charge nothing", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const bad: ReadonlyArray<Record<string, unknown>> = [
      { prompt: "too short" },
      { prompt: "  a    b    c  " },
      { name: "x".repeat(101) },
      { name: "   " },
      { gender: "robot" },
      { ageRange: 7 },
      { width: 4000 },
      { height: 256.5 },
      { style: "s".repeat(51) },
      { personaAge: 0 },
      { personaPersonality: Array.from({ length: 11 }, () => "kind") },
      { prompt: "a portrait with a \u0000 nul byte inside it" },
      { referenceAvatarId: "not-a-uuid" }
    ]
    for (const body of bad) {
      const r = await generate(user.token, projectId, body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(r.body).toMatchObject({ success: false, code: "VALIDATION_ERROR" })
    }
    expect((await h.api("GET", "/projects/not-a-uuid", user.token)).status).toBe(400)
    expect((await h.api("POST", "/projects", user.token, { name: "" })).status).toBe(400)
    expect((await h.api("POST", "/projects", user.token, { name: "ok", description: "d".repeat(501) })).status).toBe(400)
    expect(await h.balance(user.id)).toBe(100)
  })

  it("projects: CRUD with collapsed whitespace; deleting one removes its avatars", async () => {
    const user = await h.newUser(100)
    const created = await h.api("POST", "/projects", user.token, { name: "  Summer \n  shoot  ", description: "beach" })
    expect(created.status).toBe(201)
    expect(created.body["project"]).toMatchObject({ name: "Summer shoot", description: "beach", avatars: [] })
    const id = created.body["project"].id as string
    const updated = await h.api("PUT", `/projects/${id}`, user.token, { description: null })
    expect(updated.body["project"]).toMatchObject({ name: "Summer shoot", description: null })
    const started = await generate(user.token, id)
    const done = await settled(user.token, started.body["generation"].id, "completed")
    const edited = await h.api("PUT", `/avatars/${done.avatarId}`, user.token, { personaName: "Sam", personaAge: 31, personaPersonality: ["calm", "curious"] })
    expect(edited.body["avatar"]).toMatchObject({ personaName: "Sam", personaAge: 31, personaPersonality: ["calm", "curious"] })
    expect(await h.balance(user.id)).toBe(90) // editing is free
    const list = await h.api("GET", "/projects", user.token)
    expect(list.body).toMatchObject({ success: true, projects: [{ id, avatars: [{ id: done.avatarId }] }] })
    expect((await h.api("DELETE", `/projects/${id}`, user.token)).status).toBe(200)
    expect((await h.api("GET", `/avatars/${done.avatarId}`, user.token)).status).toBe(404)
    expect((await h.api("GET", "/projects", user.token)).body["projects"]).toEqual([])
  })

  it("rate limits per user: generate 5/min, from-preset 8/min, project creation 20/hour", async () => {
    const user = await h.newUser(100)
    const nobody = "00000000-0000-4000-8000-000000000001"
    for (let i = 0; i < 5; i++) expect((await generate(user.token, nobody)).status).toBe(404)
    const limited = await generate(user.token, nobody)
    expect(limited.status).toBe(429)
    expect(limited.body).toMatchObject({ success: false, code: "RATE_LIMITED" })
    const preset = { presetId: "00000000-0000-4000-8000-000000000002" }
    for (let i = 0; i < 8; i++) expect((await h.api("POST", `/projects/${nobody}/avatars/from-preset`, user.token, preset)).status).toBe(404)
    expect((await h.api("POST", `/projects/${nobody}/avatars/from-preset`, user.token, preset)).status).toBe(429)
    for (let i = 0; i < 20; i++) expect((await h.api("POST", "/projects", user.token, { name: `p${i}` })).status).toBe(201)
    expect((await h.api("POST", "/projects", user.token, { name: "one too many" })).status).toBe(429)
    // Another user has their own budget.
    const other = await h.newUser(100)
    expect((await h.api("POST", "/projects", other.token, { name: "fine" })).status).toBe(201)
  })
})

describe("Avatar Creator without an image provider", () => {
  let app: InProcessApp
  let db: pg.Pool
  const h = helpers(() => app, () => db)
  beforeAll(async () => {
    app = await startApp(testEnv({ RATE_LIMIT_REGISTER: "1000 per 1 minute", RATE_LIMIT_GENERAL: "10000 per 1 minute" }))
    db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
  })
  afterAll(async () => {
    await db?.end()
    await app?.close()
  })

  it("the generate routes answer 503 before charging; projects, presets and stats still work", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const generate = await h.api("POST", `/projects/${projectId}/avatars/generate`, user.token, { prompt: "a calm portrait of a person", name: "A" })
    expect(generate.status).toBe(503)
    expect(generate.body).toMatchObject({ success: false, error: "image generation is not configured", message: "image generation is not configured" })
    const presets = await call(app, "GET", `${BASE}/presets`)
    expect(presets.status).toBe(200)
    const preset = await h.api("POST", `/projects/${projectId}/avatars/from-preset`, user.token, { presetId: presets.body["presets"][0].id })
    expect(preset.status).toBe(503)
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100"])
    expect((await h.api("GET", "/stats", user.token)).body).toMatchObject({ imageGenerationConfigured: false, balance: 100 })
    expect((await call(app, "GET", `${BASE}/health`)).body).toMatchObject({ success: true, imageGenerationConfigured: false })
    expect((await call(app, "GET", "/api/apps", undefined, user.auth)).body["apps"].map((a: { appId: string }) => a.appId)).toContain("avatar-creator")
  })
})
