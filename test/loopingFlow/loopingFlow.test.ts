import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { Ledger } from "../../src/services/credits/Ledger.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { eventually } from "../support/jobHarness.js"
import { type InProcessApp, type InProcessServices, startApp } from "../support/inProcessApp.js"
import { type Media, media } from "./media.js"

const PASSWORD = "Correct-Horse-42"
const BASE = "/api/apps/looping-flow"

/** Command lines of the live processes that mention `needle` (an ffmpeg run names the generation in its output path). */
const processesNaming = (needle: string) =>
  fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).flatMap((pid) => {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")
      return cmd.includes(needle) && !cmd.includes("vitest") ? [cmd.replaceAll("\0", " ")] : []
    } catch {
      return []
    }
  })

describe("Looping Flow over HTTP, with its worker", () => {
  let app: InProcessApp
  let db: pg.Pool
  let m: Media
  let work: string
  let video: Buffer
  let layer: Buffer
  const run = <A, E>(effect: Effect.Effect<A, E, InProcessServices>) => Effect.runPromise(Effect.provide(effect, app.context))

  const newUser = async (credits = 100) => {
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("loop"), password: PASSWORD })
    expect(r.status).toBe(201)
    const id = r.body["data"].user.id as string
    if (credits > 100) {
      await run(Effect.flatMap(Ledger, (l) => l.credit({ userId: id, amount: credits - 100, key: `seed:${id}`, kind: "bonus", reason: "test" })))
    }
    return { id, token: r.body["data"].token as string }
  }
  const balance = (userId: string) => run(Effect.flatMap(Ledger, (l) => l.balance(userId)))
  const api = (token: string, method: string, route: string, body?: unknown) => call(app, method, `${BASE}${route}`, body, bearer(token))
  const multipart = async (token: string, route: string, fields: Record<string, string>, file: Buffer, name: string) => {
    const form = new FormData()
    for (const [k, v] of Object.entries(fields)) form.append(k, v)
    form.append("file", new Blob([file]), name)
    const res = await fetch(app.url(`${BASE}${route}`), { method: "POST", headers: bearer(token), body: form })
    return { status: res.status, body: await res.json() as Record<string, any> }
  }
  const newProject = async (token: string) => {
    const r = await api(token, "POST", "/projects", { name: "Ocean" })
    expect(r.status).toBe(201)
    return r.body["project"].id as string
  }
  const withVideo = async (token: string) => {
    const projectId = await newProject(token)
    const r = await multipart(token, "/videos/upload", { projectId }, video, "waves.mp4")
    expect(r.status).toBe(201)
    return { projectId, videoId: r.body["video"].id as string }
  }
  const used = async (userId: string) =>
    Number((await db.query("SELECT used_bytes FROM storage_usage WHERE user_id = $1", [userId])).rows[0]?.used_bytes ?? 0)
  const generation = async (id: string) => (await db.query("SELECT * FROM generations WHERE id = $1", [id])).rows[0]

  beforeAll(async () => {
    m = await media()
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-looping-http-"))
    m.ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=frequency=250:sample_rate=48000",
      "-t", "2.56", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path.join(work, "source.mp4"))
    m.ffmpeg("-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", "1.5", path.join(work, "layer.wav"))
    video = fs.readFileSync(path.join(work, "source.mp4"))
    layer = fs.readFileSync(path.join(work, "layer.wav"))
    app = await startApp(testEnv({
      RATE_LIMIT_REGISTER: "1000 per 1 minute",
      RATE_LIMIT_GENERAL: "10000 per 1 minute",
      RATE_LIMIT_UPLOAD: "1000 per 1 minute",
      RATE_LIMIT_PROJECT_CREATE: "1000 per 1 minute"
    }))
    db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
  })
  afterAll(async () => {
    await app?.close()
    await db?.end()
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  })

  it("is listed by GET /api/apps, always (no CORS_ORIGIN dependence)", async () => {
    const user = await newUser()
    const r = await call(app, "GET", "/api/apps", undefined, bearer(user.token))
    expect(r.status).toBe(200)
    expect(r.body["apps"]).toContainEqual(expect.objectContaining({ appId: "looping-flow", name: "Looping Flow", comingSoon: false }))
  })

  it("projects: create and list carry videos:[] and generations:[]; every id is the owner's only", async () => {
    const owner = await newUser()
    const other = await newUser()
    const created = await api(owner.token, "POST", "/projects", { name: "  Rain  ", description: "loops" })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ success: true, project: { name: "Rain", description: "loops", videos: [], generations: [], audioLayers: [] } })
    const id = created.body["project"].id as string
    const list = await api(owner.token, "GET", "/projects")
    expect(list.body["projects"]).toEqual([expect.objectContaining({ id, videos: [], generations: [] })])
    expect((await api(owner.token, "GET", `/projects/${id}`)).body["project"]).toMatchObject({ id, videos: [], generations: [] })
    expect((await api(other.token, "GET", "/projects")).body["projects"]).toEqual([])

    for (const [method, route] of [["GET", `/projects/${id}`], ["DELETE", `/projects/${id}`], ["GET", `/projects/${id}/generations`]]) {
      const r = await api(other.token, method!, route!)
      expect(r.status).toBe(404)
      expect(r.body).toMatchObject({ success: false, code: "LOOPING_PROJECT_NOT_FOUND", error: "No such project", message: "No such project" })
      expect(typeof r.body["requestId"]).toBe("string")
    }
    expect((await api(owner.token, "GET", "/projects/not-a-uuid")).status).toBe(400)
    for (const body of [{ name: "" }, { name: 42 }, { name: "a\u0000b" }, {}, { name: "x".repeat(201) }]) {
      const r = await api(owner.token, "POST", "/projects", body)
      expect(r.status).toBe(400)
      expect(r.body["code"]).toBe("VALIDATION_ERROR")
    }
    expect((await call(app, "GET", `${BASE}/projects`)).status).toBe(401)
    expect((await api(owner.token, "DELETE", `/projects/${id}`)).status).toBe(200)
    expect((await api(owner.token, "GET", `/projects/${id}`)).status).toBe(404)
  })

  it("videos and audio layers go through the upload pipeline, into the caller's own project only", async () => {
    const owner = await newUser()
    const other = await newUser()
    const projectId = await newProject(owner.token)

    // another user's project: refused before anything is stored or reserved
    const foreign = await multipart(other.token, "/videos/upload", { projectId }, video, "v.mp4")
    expect(foreign.status).toBe(404)
    expect(await used(other.id)).toBe(0)
    expect((await multipart(owner.token, "/videos/upload", {}, video, "v.mp4")).status).toBe(400)
    expect((await multipart(owner.token, "/videos/upload", { projectId }, layer, "v.mp4")).status).toBe(415)

    const uploaded = await multipart(owner.token, "/videos/upload", { projectId }, video, "waves.mp4")
    expect(uploaded.status).toBe(201)
    expect(uploaded.body["video"]).toMatchObject({ fileName: "waves.mp4", fileSize: video.length, mimeType: "video/mp4", width: 160, height: 120 })
    expect(uploaded.body["storageUsed"]).toBe(video.length)
    const videoId = uploaded.body["video"].id as string

    // layers: fields before the file, index 0-3, each index once
    const route = `/projects/${projectId}/audio-layers/upload`
    const added = await multipart(owner.token, route, { layerIndex: "1", volume: "40", fadeIn: "1", fadeOut: "2" }, layer, "rain.wav")
    expect(added.status).toBe(201)
    expect(added.body["audioLayer"]).toMatchObject({ layerIndex: 1, volume: 40, fadeIn: 1, fadeOut: 2, muted: false, fileName: "rain.wav" })
    const layerId = added.body["audioLayer"].id as string
    const again = await multipart(owner.token, route, { layerIndex: "1" }, layer, "rain.wav")
    expect(again.status).toBe(409)
    expect(again.body["code"]).toBe("AUDIO_LAYER_TAKEN")
    for (const fields of [{ layerIndex: "4" }, { layerIndex: "1", volume: "150" }, { layerIndex: "2", fadeIn: "-3" }, {}]) {
      const r = await multipart(owner.token, route, fields, layer, "x.wav")
      expect(r.status).toBe(400)
      expect(r.body["code"]).toBe("VALIDATION_ERROR")
    }
    expect((await multipart(other.token, route, { layerIndex: "0" }, layer, "x.wav")).status).toBe(404)
    expect(await used(other.id)).toBe(0)
    const storage = await used(owner.id)
    expect(storage).toBe(video.length + layer.length) // refused uploads left nothing reserved

    // PATCH and DELETE of a layer: ranges and ownership
    expect((await api(owner.token, "PATCH", `/audio-layers/${layerId}`, { volume: 70, muted: true })).body["audioLayer"])
      .toMatchObject({ volume: 70, muted: true, fadeIn: 1 })
    for (const body of [{ volume: 101 }, { fadeOut: 11 }, { muted: "yes" }, { volume: "7" }]) {
      expect((await api(owner.token, "PATCH", `/audio-layers/${layerId}`, body)).status).toBe(400)
    }
    expect((await api(other.token, "PATCH", `/audio-layers/${layerId}`, { volume: 1 })).status).toBe(404)
    expect((await api(other.token, "DELETE", `/audio-layers/${layerId}`)).status).toBe(404)
    expect((await api(other.token, "DELETE", `/videos/${videoId}`)).status).toBe(404)
    const project = (await api(owner.token, "GET", `/projects/${projectId}`)).body["project"]
    expect(project.videos).toHaveLength(1)
    expect(project.audioLayers).toEqual([expect.objectContaining({ id: layerId, layerIndex: 1, volume: 70, muted: true })])

    expect((await api(owner.token, "DELETE", `/audio-layers/${layerId}`)).body).toMatchObject({ success: true, freedSpace: layer.length })
    expect((await api(owner.token, "DELETE", `/videos/${videoId}`)).body).toMatchObject({ success: true, freedSpace: video.length, storageUsed: 0 })
    expect((await api(owner.token, "GET", `/projects/${projectId}`)).body["project"]).toMatchObject({ videos: [], audioLayers: [] })
  })

  it("generate validates its input and the ownership of every id; estimate follows the formula", async () => {
    const owner = await newUser()
    const other = await newUser()
    const { projectId, videoId } = await withVideo(owner.token)
    const mine = await withVideo(other.token)
    expect((await api(owner.token, "POST", "/estimate", { targetDuration: 21_600 })).body).toEqual({ success: true, creditCost: 74 })
    expect((await api(owner.token, "POST", "/estimate", { targetDuration: 0 })).status).toBe(400)

    const base = { projectId, videoId, targetDuration: 30, loopStyle: "crossfade" }
    for (const bad of [
      { targetDuration: 0 },
      { targetDuration: 28_801 },
      { targetDuration: "30" },
      { targetDuration: Number.NaN },
      { loopStyle: "zigzag" },
      { crossfadeDuration: 3 },
      { crossfadeDuration: 0.1 },
      { masterVolume: 101 },
      { audioFadeIn: 11 },
      { muteOriginal: "no" },
      { projectId: "nope" }
    ]) {
      const r = await api(owner.token, "POST", "/generate", { ...base, ...bad })
      expect(r.status, JSON.stringify(bad)).toBe(400)
      expect(r.body).toMatchObject({ success: false, code: "VALIDATION_ERROR" })
    }
    // someone else's project or video, or a video of another project: 404, nothing charged
    expect((await api(owner.token, "POST", "/generate", { ...base, projectId: mine.projectId })).status).toBe(404)
    expect((await api(owner.token, "POST", "/generate", { ...base, videoId: mine.videoId })).status).toBe(404)
    const second = await withVideo(owner.token)
    expect((await api(owner.token, "POST", "/generate", { ...base, videoId: second.videoId })).status).toBe(404)
    // more than the balance: 402 with what it needs
    const poor = await api(owner.token, "POST", "/generate", { ...base, targetDuration: 28_800 })
    expect(poor.status).toBe(402)
    expect(poor.body).toMatchObject({ code: "INSUFFICIENT_CREDITS", required: 102, current: 100 })
    expect(await balance(owner.id)).toBe(100)
    // someone else's generation: 404 on cancel and download
    const ok = await api(owner.token, "POST", "/generate", { ...base, targetDuration: 5 })
    expect(ok.status).toBe(201)
    const id = ok.body["generation"].id as string
    expect((await api(other.token, "POST", `/generations/${id}/cancel`)).status).toBe(404)
    expect((await api(other.token, "GET", `/download/${id}`)).status).toBe(404)
    await eventually(async () => ((await generation(id))?.status === "completed" ? true : undefined), 60_000, "completed")
  }, 90_000)

  it("renders a loop with a layer through the generation flow: charged by the formula, downloadable by its owner only", async () => {
    const owner = await newUser()
    const other = await newUser()
    const { projectId, videoId } = await withVideo(owner.token)
    expect((await multipart(owner.token, `/projects/${projectId}/audio-layers/upload`, { layerIndex: "0", volume: "80" }, layer, "l.wav")).status)
      .toBe(201)
    const r = await api(owner.token, "POST", "/generate", { projectId, videoId, targetDuration: 601, loopStyle: "boomerang", audioFadeOut: 2 })
    expect(r.status).toBe(201)
    expect(r.body).toMatchObject({ success: true, creditUsed: 4, creditBalance: 96, generation: { status: "pending", targetDuration: 601, loopStyle: "boomerang", audioLayers: 1 } })
    const id = r.body["generation"].id as string
    await eventually(async () => ((await generation(id))?.status === "completed" ? true : undefined), 120_000, "completed")

    const project = (await api(owner.token, "GET", `/projects/${projectId}`)).body["project"]
    expect(project.generations).toEqual([expect.objectContaining({ id, status: "completed", progress: 100, creditUsed: 4, outputPath: `${BASE}/download/${id}` })])
    const listed = (await api(owner.token, "GET", `/projects/${projectId}/generations`)).body["generations"]
    expect(listed.map((g: { id: string }) => g.id)).toEqual([id])

    const res = await fetch(app.url(`${BASE}/download/${id}`), { headers: bearer(owner.token) })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("video/mp4")
    expect(res.headers.get("content-disposition")).toContain(`looped-video-${id}.mp4`)
    const file = path.join(work, `${id}.mp4`)
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()))
    // (before the slow measurements below: a kept-alive socket idle past the server's timeout resets)
    const part = await fetch(app.url(`${BASE}/download/${id}`), { headers: { ...bearer(owner.token), range: "bytes=0-99" } })
    expect(part.status).toBe(206)
    expect((await part.arrayBuffer()).byteLength).toBe(100)
    expect((await api(other.token, "GET", `/download/${id}`)).status).toBe(404)
    expect(Math.abs(Number(m.probe(file).format.duration) - 601)).toBeLessThan(0.1)
    expect(m.bandLevel(file, 1000)).toBeGreaterThan(-35) // the layer is in
    expect(m.bandLevel(file, 250)).toBeGreaterThan(-35) // and the original
    expect(await balance(owner.id)).toBe(96)
  }, 150_000)

  it("cancel mid-render stops ffmpeg (no process left) and refunds exactly what was charged", async () => {
    const owner = await newUser(500)
    const { projectId, videoId } = await withVideo(owner.token)
    expect((await multipart(owner.token, `/projects/${projectId}/audio-layers/upload`, { layerIndex: "3" }, layer, "l.wav")).status).toBe(201)
    // 8 hours with a layer: the audio mix is encoded for the whole length, minutes of work
    const r = await api(owner.token, "POST", "/generate", { projectId, videoId, targetDuration: 28_800, loopStyle: "simple" })
    expect(r.status).toBe(201)
    expect(r.body["creditUsed"]).toBe(102)
    expect(await balance(owner.id)).toBe(398)
    const id = r.body["generation"].id as string
    await eventually(async () => (processesNaming(id).length > 0 ? true : undefined), 60_000, "the final ffmpeg running")
    expect((await generation(id)).status).toBe("processing")

    const cancelled = await api(owner.token, "POST", `/generations/${id}/cancel`)
    expect(cancelled.status).toBe(200)
    expect(cancelled.body["generation"]).toMatchObject({ id, status: "cancelled", creditUsed: 0 })
    await eventually(async () => (processesNaming(id).length === 0 ? true : undefined), 10_000, "ffmpeg gone")
    expect(await balance(owner.id)).toBe(500)
    const ledger = (await db.query<{ kind: string; delta: string }>(
      "SELECT kind, delta FROM credit_ledger WHERE user_id = $1 AND kind <> 'bonus' AND kind <> 'welcome' ORDER BY id", [owner.id]
    )).rows.map((row) => `${row.kind}:${row.delta}`)
    expect(ledger.filter((l) => !l.startsWith("signup") && !l.startsWith("grant"))).toEqual(["usage:-102", "refund:102"])
    expect((await api(owner.token, "POST", `/generations/${id}/cancel`)).status).toBe(409)
    expect((await api(owner.token, "GET", `/download/${id}`)).body).toMatchObject({ code: "LOOP_NOT_READY" })
    // nothing left behind by the render either
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(processesNaming(id)).toEqual([])
  }, 120_000)
})
