import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import yauzl from "yauzl"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { makeFixtures } from "./media.js"
import { mixSettings } from "./settings.js"

const PASSWORD = "Correct-Horse-42"
const BASE = "/api/apps/video-mixer"

interface ZipEntry {
  readonly name: string
  readonly method: number
  readonly bytes: Buffer
}

/** Every entry of a ZIP, with its compression method, read by yauzl (a ZIP reader independent of the writer). */
const readZip = (zip: Buffer): Promise<Array<ZipEntry>> =>
  new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (error, file) => {
      if (error || file === undefined) return reject(error ?? new Error("no zip"))
      const entries: Array<ZipEntry> = []
      file.on("entry", (entry: yauzl.Entry) => {
        file.openReadStream(entry, (openError, stream) => {
          if (openError || stream === undefined) return reject(openError ?? new Error("no stream"))
          const chunks: Array<Buffer> = []
          stream.on("data", (c: Buffer) => chunks.push(c))
          stream.on("end", () => {
            entries.push({ name: entry.fileName, method: entry.compressionMethod, bytes: Buffer.concat(chunks) })
            file.readEntry()
          })
          stream.on("error", reject)
        })
      })
      file.on("end", () => resolve(entries))
      file.on("error", reject)
      file.readEntry()
    })
  })

/** Generate, render with the real worker and ffmpeg, then download one output (Range) or all of them as a ZIP. */
describe("Video Mixer downloads of rendered outputs", () => {
  let app: InProcessApp
  let db: pg.Pool
  let work: string
  let storageDir: string
  let clips: Array<Buffer>

  const newUser = async () => {
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("vmdl"), password: PASSWORD })
    expect(r.status).toBe(201)
    return { id: r.body["data"].user.id as string, auth: bearer(r.body["data"].token as string) }
  }
  const upload = async (auth: Record<string, string>, projectId: string, bytes: Buffer) => {
    const form = new FormData()
    form.append("projectId", projectId)
    form.append("file", new Blob([bytes], { type: "video/mp4" }), "clip.mp4")
    const res = await fetch(app.url(`${BASE}/videos/upload`), { method: "POST", headers: auth, body: form })
    expect(res.status).toBe(201)
  }

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-vmdl-media-"))
    clips = (await makeFixtures(work)).map((file) => fs.readFileSync(file))
    const env = testEnv({
      REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}vmdl:`,
      RATE_LIMIT_UPLOAD: "1000 per 1 minute",
      RATE_LIMIT_REGISTER: "1000 per 1 minute",
      RATE_LIMIT_GENERAL: "10000 per 1 minute"
    })
    storageDir = env["STORAGE_DIR"]!
    app = await startApp(env)
    db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
  }, 60_000)

  afterAll(async () => {
    await app?.close()
    await db?.end()
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  })

  it("serves each output to its owner only, with Range, and all of them as a stored ZIP", async () => {
    const owner = await newUser()
    const stranger = await newUser()
    const project = await call(app, "POST", `${BASE}/projects`, { name: "Render" }, owner.auth)
    const projectId = project.body["project"].id as string
    await upload(owner.auth, projectId, clips[0]!)
    await upload(owner.auth, projectId, clips[2]!)
    const settings = mixSettings({ enableOrderMixing: true, metadataSource: "tiktok", frameRate: 24, aspectRatio: "1:1" })
    const generated = await call(app, "POST", `${BASE}/generate`, { projectId, totalVideos: 2, settings }, owner.auth)
    expect(generated.status).toBe(201)
    const id = generated.body["generation"].id as string

    let listed: Record<string, any> = {}
    await waitUntil(async () => {
      listed = (await call(app, "GET", `${BASE}/projects/${projectId}/generations`, undefined, owner.auth)).body["generations"][0]
      if (listed["status"] === "failed") throw new Error(`render failed: ${listed["errorMessage"]}`)
      return listed["status"] === "completed"
    }, 180_000)
    expect(listed).toMatchObject({ id, status: "completed", progress: 100, totalVideos: 2, videosDelivered: 2, creditUsed: 4, frameRate: 24 })
    expect(listed["completedAt"]).toEqual(expect.any(String))
    const urls = JSON.parse(listed["outputPaths"]) as Array<string>
    expect(urls).toEqual([`${BASE}/download/${id}/0`, `${BASE}/download/${id}/1`])

    const outputs: Array<Buffer> = []
    for (const [i, url] of urls.entries()) {
      const res = await fetch(app.url(url), { headers: owner.auth })
      expect(res.status).toBe(200)
      expect(res.headers.get("content-type")).toBe("video/mp4")
      expect(res.headers.get("x-content-type-options")).toBe("nosniff")
      expect(res.headers.get("content-disposition")).toContain(`filename="generated_video_${i + 1}.mp4"`)
      const bytes = Buffer.from(await res.arrayBuffer())
      expect(res.headers.get("content-length")).toBe(String(bytes.length))
      expect(bytes.subarray(4, 8).toString("latin1")).toBe("ftyp")
      outputs.push(bytes)
    }
    const part = await fetch(app.url(urls[1]!), { headers: { ...owner.auth, range: "bytes=100-199" } })
    expect(part.status).toBe(206)
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${outputs[1]!.length}`)
    expect(Buffer.from(await part.arrayBuffer()).equals(outputs[1]!.subarray(100, 200))).toBe(true)

    // nobody else's, no index past the outputs, no index that is not a whole number
    const foreign = await call(app, "GET", urls[0]!, undefined, stranger.auth)
    expect(foreign.status).toBe(404)
    expect(foreign.body["code"]).toBe("GENERATION_NOT_FOUND")
    expect((await call(app, "GET", `${BASE}/download-all/${id}`, undefined, stranger.auth)).status).toBe(404)
    expect((await fetch(app.url(urls[0]!))).status).toBe(401)
    const past = await call(app, "GET", `${BASE}/download/${id}/2`, undefined, owner.auth)
    expect(past.status).toBe(404)
    expect(past.body).toMatchObject({ code: "OUTPUT_NOT_FOUND", outputCount: 2 })
    for (const bad of ["-1", "1.0", "abc", "99999999"]) {
      expect((await call(app, "GET", `${BASE}/download/${id}/${bad}`, undefined, owner.auth)).status).toBe(400)
    }

    const zip = await fetch(app.url(`${BASE}/download-all/${id}`), { headers: owner.auth })
    expect(zip.status).toBe(200)
    expect(zip.headers.get("content-type")).toBe("application/zip")
    expect(zip.headers.get("content-disposition")).toBe(`attachment; filename="generation_${id}.zip"`)
    expect(zip.headers.get("x-content-type-options")).toBe("nosniff")
    // streamed as it is made: no length known up front
    expect(zip.headers.get("content-length")).toBeNull()
    const entries = await readZip(Buffer.from(await zip.arrayBuffer()))
    expect(entries.map((e) => e.name)).toEqual(["video_1.mp4", "video_2.mp4"])
    expect(entries.map((e) => e.method)).toEqual([0, 0]) // STORE: no recompression
    expect(entries.map((e) => e.bytes.equals(outputs[entries.indexOf(e)]!))).toEqual([true, true])

    // deleting the project deletes the outputs too
    const keys = (await db.query("SELECT outputs FROM generations WHERE id = $1", [id])).rows[0].outputs.map((o: { key: string }) => o.key) as Array<string>
    expect(keys).toHaveLength(2)
    expect((await call(app, "DELETE", `${BASE}/projects/${projectId}`, undefined, owner.auth)).body).toMatchObject({ deletedGenerations: 1 })
    const left = fs.readdirSync(storageDir, { recursive: true }).map(String)
    for (const key of keys) expect(left).not.toContain(key)
  }, 240_000)
})
