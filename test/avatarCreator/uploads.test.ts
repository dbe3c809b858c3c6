import * as fs from "node:fs"
import * as path from "node:path"
import pg from "pg"
import sharp from "sharp"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { testEnv } from "../support/env.js"
import { type InProcessApp, startApp } from "../support/inProcessApp.js"
import { pngHeader } from "../images/pictures.js"
import { helpers, photo } from "./support.js"

const IMAGE_LIMIT = 1_500_000

describe("Avatar Creator uploads", () => {
  let app: InProcessApp
  let db: pg.Pool
  let storageDir: string
  const h = helpers(() => app, () => db)

  const uploadsOf = async (userId: string) => (await db.query("SELECT * FROM uploads WHERE user_id = $1", [userId])).rows
  const used = async (userId: string) =>
    Number((await db.query("SELECT used_bytes FROM storage_usage WHERE user_id = $1", [userId])).rows[0]?.used_bytes ?? 0)
  const filesOf = (userId: string) => {
    const found: Array<string> = []
    for (const dir of [path.join(storageDir, "uploads", userId), path.join(storageDir, "avatars", userId)]) {
      if (fs.existsSync(dir)) found.push(...fs.readdirSync(dir))
    }
    return found
  }
  /** Nothing charged, stored or reserved for this user. */
  const nothingLeft = async (userId: string) => {
    expect(await h.ledgerRows(userId)).toEqual(["bonus:100"])
    expect(await uploadsOf(userId)).toEqual([])
    expect(await used(userId)).toBe(0)
    expect(filesOf(userId)).toEqual([])
  }

  beforeAll(async () => {
    const env = testEnv({
      UPLOAD_IMAGE_MAX_BYTES: String(IMAGE_LIMIT),
      RATE_LIMIT_REGISTER: "1000 per 1 minute",
      RATE_LIMIT_GENERAL: "10000 per 1 minute"
    })
    storageDir = env["STORAGE_DIR"]!
    app = await startApp(env)
    db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
  })
  afterAll(async () => {
    await db?.end()
    await app?.close()
  })

  for (const format of ["png", "jpeg", "webp"] as const) {
    it(`a valid ${format} is 201: 2 credits, metadata stripped, a 300x300 ${format} thumbnail, persona fields kept`, async () => {
      const user = await h.newUser(100)
      const projectId = await h.newProject(user.token)
      const original = await photo(format, 640, 480)
      expect(original.includes("exif-canary-3f9a")).toBe(true)
      const r = await h.upload(user.token, projectId, original, {
        name: "  Holiday   me ",
        gender: "male",
        ageRange: "adult",
        style: "casual",
        personaName: "Budi",
        personaAge: "34",
        personaPersonality: "friendly, curious ,",
        personaBackground: "Grew up in Bandung"
      }, `me.${format}`)
      expect(r.status).toBe(201)
      expect(r.body).toMatchObject({ success: true, creditUsed: 2, creditBalance: 98 })
      expect(r.body["avatar"]).toMatchObject({
        name: "Holiday me",
        sourceType: "uploaded",
        gender: "male",
        ageRange: "adult",
        personaName: "Budi",
        personaAge: 34,
        personaPersonality: ["friendly", "curious"],
        personaBackground: "Grew up in Bandung"
      })
      expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:-2"])
      const image = await h.download(user.token, r.body["avatar"].baseImageUrl)
      expect(image.status).toBe(200)
      expect(image.bytes.includes("exif-canary-3f9a")).toBe(false)
      expect(await sharp(image.bytes).metadata()).toMatchObject({ format, width: 640, height: 480 })
      const thumb = await h.download(user.token, r.body["avatar"].thumbnailUrl)
      expect(thumb.headers.get("content-type")).toBe(image.headers.get("content-type"))
      expect(await sharp(thumb.bytes).metadata()).toMatchObject({ format, width: 300, height: 300 })
      const extension = format === "jpeg" ? "jpg" : format
      expect(filesOf(user.id).every((file) => file.endsWith(`.${extension}`))).toBe(true)
      expect(filesOf(user.id)).toHaveLength(2)
      // The stored upload row has the header's dimensions and the re-encoded size, counted in the quota.
      const [row] = await uploadsOf(user.id)
      expect(row).toMatchObject({ width: 640, height: 480, size_bytes: String(image.bytes.byteLength) })
      expect(await used(user.id)).toBe(image.bytes.byteLength)

      // Deleting the avatar deletes its upload and thumbnail and releases the quota; no refund (it was delivered).
      expect((await h.api("DELETE", `/avatars/${r.body["avatar"].id}`, user.token)).status).toBe(200)
      expect(await uploadsOf(user.id)).toEqual([])
      expect(await used(user.id)).toBe(0)
      expect(filesOf(user.id)).toEqual([])
      expect(await h.balance(user.id)).toBe(98)
    })
  }

  it("a 100000x100000 PNG header (a pixel flood) is 422, refused from the header, nothing charged or kept", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const r = await h.upload(user.token, projectId, pngHeader(100_000, 100_000))
    expect(r.status).toBe(422)
    expect(r.body).toMatchObject({ success: false, code: "UNREADABLE_MEDIA" })
    expect(r.body["message"]).toMatch(/100000x100000/)
    await nothingLeft(user.id)
  })

  it("a 5000 px image and a 100 px image are 422 (256-4096 px a side)", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const wide = await sharp({ create: { width: 5000, height: 300, channels: 3, background: "#123456" } }).png().toBuffer()
    const tooWide = await h.upload(user.token, projectId, wide)
    expect(tooWide.status).toBe(422)
    expect(tooWide.body["message"]).toMatch(/5000x300/)
    const small = await h.upload(user.token, projectId, await photo("jpeg", 100, 100), { name: "x" }, "x.jpg")
    expect(small.status).toBe(422)
    await nothingLeft(user.id)
  })

  it("bad files: empty, HTML, SVG, text named .png are 415; a truncated PNG 422; one byte over the limit 413", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const cases: ReadonlyArray<readonly [Uint8Array, number, string]> = [
      [new Uint8Array(0), 415, "empty.png"],
      [Buffer.from("<!doctype html><html><script>alert(1)</script></html>"), 415, "page.png"],
      [Buffer.from("<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>"), 415, "x.svg"],
      [Buffer.from("just some text"), 415, "notes.png"],
      [(await sharp({ create: { width: 400, height: 400, channels: 3, background: "#808080", noise: { type: "gaussian", mean: 128, sigma: 30 } } }).png().toBuffer()).subarray(0, 300), 422, "cut.png"],
      [Buffer.concat([(await photo("png", 300, 300)).subarray(0, 8), Buffer.alloc(IMAGE_LIMIT)]), 413, "big.png"]
    ]
    for (const [bytes, status, name] of cases) {
      const r = await h.upload(user.token, projectId, bytes, { name: "x" }, name)
      expect(r.status, name).toBe(status)
      expect(r.body).toMatchObject({ success: false })
      expect(r.body["error"]).toBe(r.body["message"])
    }
    await nothingLeft(user.id)
  })

  it("bad fields, another user's project, a missing file: refused before anything is stored or charged", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const picture = await photo("png", 300, 300)
    for (const fields of [{ name: "x", gender: "robot" }, { gender: "male" }, { name: "x", personaAge: "abc" }, { name: "x", personaAge: "121" }, { name: "x".repeat(101) }, { name: "a\u0000b" }, { name: "x", personaPersonality: "a,b,c,d,e,f,g,h,i,j,k" }]) {
      const r = await h.upload(user.token, projectId, picture, fields)
      expect(r.status, JSON.stringify(fields)).toBe(400)
      expect(r.body["code"]).toBe("VALIDATION_ERROR")
    }
    const other = await h.newUser(100)
    const theirs = await h.newProject(other.token)
    expect((await h.upload(user.token, theirs, picture)).status).toBe(404)
    expect((await h.upload(user.token, "00000000-0000-4000-8000-000000000009", picture)).status).toBe(404)
    const unknownField = await h.upload(user.token, projectId, picture, { name: "x", isAdmin: "true" })
    expect(unknownField.status).toBe(400)
    await nothingLeft(user.id)
  })

  it("too few credits is 402 and leaves nothing; concurrent uploads charge exactly what the balance covers", async () => {
    const poor = await h.newUser(1)
    const projectId = await h.newProject(poor.token)
    const picture = await photo("png", 300, 300)
    const refused = await h.upload(poor.token, projectId, picture)
    expect(refused.status).toBe(402)
    expect(refused.body).toMatchObject({ code: "INSUFFICIENT_CREDITS", required: 2, current: 1 })
    expect(await uploadsOf(poor.id)).toEqual([])
    expect(await used(poor.id)).toBe(0)

    const user = await h.newUser(5)
    const project = await h.newProject(user.token)
    const results = await Promise.all(Array.from({ length: 5 }, () => h.upload(user.token, project, picture)))
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 402, 402, 402])
    expect(await h.balance(user.id)).toBe(1)
    expect(await uploadsOf(user.id)).toHaveLength(2)
    expect(filesOf(user.id)).toHaveLength(4)
    expect((await h.api("GET", "/avatars", user.token)).body["avatars"]).toHaveLength(2)
  })

  it("enterprise users upload for 0", async () => {
    const user = await h.newUser(100, true)
    const projectId = await h.newProject(user.token)
    const r = await h.upload(user.token, projectId, await photo("webp", 300, 300), { name: "x" }, "x.webp")
    expect(r.status).toBe(201)
    expect(r.body).toMatchObject({ creditUsed: 0, creditBalance: 100 })
    expect(await h.ledgerRows(user.id)).toEqual(["bonus:100", "usage:0"])
  })

  it("uploads are limited to 10 per minute per user", async () => {
    const user = await h.newUser(100)
    const projectId = await h.newProject(user.token)
    const empty = new Uint8Array(0)
    for (let i = 0; i < 10; i++) expect((await h.upload(user.token, projectId, empty)).status).toBe(415)
    const limited = await h.upload(user.token, projectId, empty)
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).not.toBeNull()
  })
})
