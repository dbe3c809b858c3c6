import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { Ledger } from "../../src/services/credits/Ledger.js"
import { creditCostPerOutput } from "../../src/services/videoMixer/MixSettings.js"
import { bearer, call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { type InProcessApp, type InProcessServices, startApp } from "../support/inProcessApp.js"
import { FIXTURES, makeFixtures } from "./media.js"
import { mixSettings } from "./settings.js"

const PASSWORD = "Correct-Horse-42"
const MAX = 5
const BASE = "/api/apps/video-mixer"
const OTHER_UUID = "7d0f0b1e-5a8e-4c52-9a4f-3f1b2c3d4e5f"

const settings = mixSettings

/** Every file under `dir`, relative. */
const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))

/**
 * Video Mixer's routes without a worker (jobs stay pending): projects, groups, videos, ownership of
 * every id, validation, estimate, and generate up to the charge and the pending row.
 */
describe("Video Mixer projects, videos, estimate and generate over HTTP", () => {
  let app: InProcessApp
  let db: pg.Pool
  let work: string
  let storageDir: string
  let clips: Array<Buffer>
  const run = <A, E>(effect: Effect.Effect<A, E, InProcessServices>) => Effect.runPromise(Effect.provide(effect, app.context))

  const newUser = async (credits = 100) => {
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("vmd"), password: PASSWORD })
    expect(r.status).toBe(201)
    const id = r.body["data"].user.id as string
    if (credits !== 100) {
      await run(Effect.flatMap(Ledger, (ledger) =>
        credits > 100
          ? ledger.credit({ userId: id, amount: credits - 100, key: `seed:${id}`, kind: "bonus", reason: "test" })
          : ledger.debit({ userId: id, amount: 100 - credits, key: `seed:${id}`, kind: "adjustment", reason: "test" })))
    }
    return { id, token: r.body["data"].token as string, auth: bearer(r.body["data"].token as string) }
  }
  type User = Awaited<ReturnType<typeof newUser>>
  const api = (user: User, method: string, route: string, body?: unknown) => call(app, method, `${BASE}${route}`, body, user.auth)
  const balance = (userId: string) => run(Effect.flatMap(Ledger, (l) => l.balance(userId)))
  const used = async (userId: string) =>
    Number((await db.query("SELECT used_bytes FROM storage_usage WHERE user_id = $1", [userId])).rows[0]?.used_bytes ?? 0)
  const newProject = async (user: User, name = "Project") => {
    const r = await api(user, "POST", "/projects", { name })
    expect(r.status).toBe(201)
    return r.body["project"].id as string
  }
  const upload = async (user: User, fields: Record<string, string>, bytes: Buffer = clips[0]!) => {
    const form = new FormData()
    for (const [key, value] of Object.entries(fields)) form.append(key, value)
    form.append("file", new Blob([bytes], { type: "video/mp4" }), "clip.mp4")
    const res = await fetch(app.url(`${BASE}/videos/upload`), { method: "POST", headers: user.auth, body: form })
    return { status: res.status, body: await res.json() as Record<string, any> }
  }
  /** A project with the three fixture clips, the first two in group A, the third ungrouped. */
  const stockedProject = async (user: User) => {
    const projectId = await newProject(user)
    const group = await api(user, "POST", "/groups", { projectId, name: "A" })
    const groupId = group.body["group"].id as string
    const videoIds: Array<string> = []
    for (const [i, bytes] of clips.entries()) {
      const r = await upload(user, i < 2 ? { projectId, groupId } : { projectId }, bytes)
      expect(r.status).toBe(201)
      videoIds.push(r.body["video"].id)
    }
    return { projectId, groupId, videoIds }
  }

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-vmd-media-"))
    clips = (await makeFixtures(work)).map((file) => fs.readFileSync(file))
    const env = testEnv({
      // no worker here (ROLE=api), so generations stay pending; its own queue prefix keeps them from any other file's workers
      ROLE: "api",
      REDIS_KEY_PREFIX: `${inject("redisKeyPrefix")}vmd:`,
      VIDEO_MIXER_MAX_OUTPUTS: String(MAX),
      RATE_LIMIT_UPLOAD: "1000 per 1 minute",
      RATE_LIMIT_REGISTER: "1000 per 1 minute",
      RATE_LIMIT_GENERAL: "10000 per 1 minute",
      RATE_LIMIT_PROJECT_CREATE: "1000 per 1 minute"
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

  it("creates, lists, reads, renames and deletes projects and groups in the web app's shapes", async () => {
    const user = await newUser()
    const created = await api(user, "POST", "/projects", { name: "  Summer  ", description: "Beach clips\nday one" })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ success: true, project: { name: "Summer", description: "Beach clips\nday one", videos: [], groups: [] } })
    const id = created.body["project"].id as string

    const g1 = await api(user, "POST", "/groups", { projectId: id, name: "Intro" })
    const g2 = await api(user, "POST", "/groups", { projectId: id, name: "Outro", order: 7 })
    expect(g1.status).toBe(201)
    expect(g1.body["group"]).toMatchObject({ name: "Intro", order: 0, projectId: id, videos: [] })
    expect(g2.body["group"]).toMatchObject({ name: "Outro", order: 7 })

    const listed = await api(user, "GET", "/projects")
    expect(listed.body["success"]).toBe(true)
    const mine = listed.body["projects"].find((p: { id: string }) => p.id === id)
    expect(mine.groups.map((g: { name: string }) => g.name)).toEqual(["Intro", "Outro"])
    expect(mine.videos).toEqual([])

    const renamed = await api(user, "PUT", `/projects/${id}`, { name: "Winter" })
    expect(renamed.body["project"]).toMatchObject({ name: "Winter", description: "Beach clips\nday one" })
    const cleared = await api(user, "PUT", `/projects/${id}`, { description: null })
    expect(cleared.body["project"]).toMatchObject({ name: "Winter", description: null })

    const groups = await api(user, "GET", `/projects/${id}/groups`)
    expect(groups.body["groups"]).toHaveLength(2)
    expect((await api(user, "DELETE", `/groups/${g1.body["group"].id}`)).body).toEqual({ success: true })
    expect((await api(user, "GET", `/projects/${id}`)).body["project"].groups).toHaveLength(1)

    expect((await api(user, "GET", "/stats")).body).toEqual({ success: true, totalProjects: 1, totalVideos: 0, totalGenerations: 0 })
    const deleted = await api(user, "DELETE", `/projects/${id}`)
    expect(deleted.body).toEqual({ success: true, freedSpace: 0, deletedVideos: 0, deletedGenerations: 0 })
    expect((await api(user, "GET", `/projects/${id}`)).status).toBe(404)
  })

  it("refuses bad input with 400 and the one error body", async () => {
    const user = await newUser()
    const id = await newProject(user)
    const cases: Array<[string, string, unknown]> = [
      ["POST", "/projects", { name: "" }],
      ["POST", "/projects", { name: "   " }],
      ["POST", "/projects", { name: "x".repeat(101) }],
      ["POST", "/projects", { name: "bell\u0007" }],
      ["POST", "/projects", { name: "ok", description: "x".repeat(501) }],
      ["POST", "/projects", { name: 42 }],
      ["POST", "/projects", { name: "ok", userId: OTHER_UUID }],
      ["PUT", `/projects/${id}`, { name: "ok", user_id: OTHER_UUID }],
      ["POST", "/groups", { projectId: "not-a-uuid", name: "A" }],
      ["POST", "/groups", { projectId: id, name: "A", order: 1.5 }],
      ["GET", "/projects/not-a-uuid", undefined],
      ["DELETE", "/videos/123", undefined],
      ["GET", "/download/not-a-uuid/0", undefined]
    ]
    for (const [method, route, body] of cases) {
      const r = await api(user, method, route, body)
      expect({ route, body, status: r.status }).toEqual({ route, body, status: 400 })
      expect(r.body).toMatchObject({ success: false, code: "VALIDATION_ERROR", requestId: expect.any(String) })
      expect(r.body["message"]).toBe(r.body["error"])
    }
    // NUL bytes never reach Postgres
    const nul = await api(user, "POST", "/projects", { name: "a\u0000b" })
    expect(nul.status).toBe(400)
    expect((await call(app, "GET", `${BASE}/projects`)).status).toBe(401)
  })

  it("answers 404 for another user's project, group, video and generation, and 400 for a group of another project", async () => {
    const owner = await newUser()
    const stranger = await newUser()
    const { projectId, groupId, videoIds } = await stockedProject(owner)
    const otherProject = await newProject(owner, "Other")
    const otherGroup = (await api(owner, "POST", "/groups", { projectId: otherProject, name: "B" })).body["group"].id as string
    const strangerProject = await newProject(stranger)
    const strangerGroup = (await api(stranger, "POST", "/groups", { projectId: strangerProject, name: "S" })).body["group"].id as string

    const notFound: Array<[string, string, unknown, string]> = [
      ["GET", `/projects/${projectId}`, undefined, "PROJECT_NOT_FOUND"],
      ["PUT", `/projects/${projectId}`, { name: "mine" }, "PROJECT_NOT_FOUND"],
      ["DELETE", `/projects/${projectId}`, undefined, "PROJECT_NOT_FOUND"],
      ["GET", `/projects/${projectId}/groups`, undefined, "PROJECT_NOT_FOUND"],
      ["GET", `/projects/${projectId}/videos`, undefined, "PROJECT_NOT_FOUND"],
      ["GET", `/projects/${projectId}/generations`, undefined, "PROJECT_NOT_FOUND"],
      ["POST", "/groups", { projectId, name: "X" }, "PROJECT_NOT_FOUND"],
      ["DELETE", `/groups/${groupId}`, undefined, "GROUP_NOT_FOUND"],
      ["PUT", `/videos/${videoIds[0]}`, { groupId: null }, "VIDEO_NOT_FOUND"],
      ["DELETE", `/videos/${videoIds[0]}`, undefined, "VIDEO_NOT_FOUND"],
      ["POST", "/estimate", { projectId, totalVideos: 1, settings: settings() }, "PROJECT_NOT_FOUND"],
      ["POST", "/generate", { projectId, totalVideos: 1, settings: settings() }, "PROJECT_NOT_FOUND"],
      ["GET", `/projects/${OTHER_UUID}`, undefined, "PROJECT_NOT_FOUND"]
    ]
    for (const [method, route, body, code] of notFound) {
      const r = await api(stranger, method, route, body)
      expect({ route, status: r.status, code: r.body["code"] }).toEqual({ route, status: 404, code })
    }
    // the stranger's upload into the owner's project is refused before anything is reserved or written
    const before = filesUnder(storageDir).length
    const foreign = await upload(stranger, { projectId })
    expect(foreign.status).toBe(404)
    expect(foreign.body["code"]).toBe("PROJECT_NOT_FOUND")
    expect(await used(stranger.id)).toBe(0)
    expect(filesUnder(storageDir).length).toBe(before)
    // and a group of another project (the owner's own, or the stranger's), on upload and on move
    for (const badGroup of [otherGroup, strangerGroup, OTHER_UUID]) {
      const r = await upload(owner, { projectId, groupId: badGroup })
      expect(r.status).toBe(400)
      const moved = await api(owner, "PUT", `/videos/${videoIds[0]}`, { groupId: badGroup })
      expect(moved.status).toBe(400)
      expect(moved.body["code"]).toBe("VALIDATION_ERROR")
    }
    expect(filesUnder(storageDir).length).toBe(before)
    expect((await upload(owner, { projectId: "nope" })).status).toBe(400)
    // PUT /videos/:id takes groupId only
    for (const body of [{ groupId: null, projectId: otherProject }, { groupId: null, storageKey: "x" }, {}, { groupId: 5 }]) {
      expect((await api(owner, "PUT", `/videos/${videoIds[0]}`, body)).status).toBe(400)
    }
    // nothing above moved anything
    const project = (await api(owner, "GET", `/projects/${projectId}`)).body["project"]
    expect(project.videos.map((v: { groupId: string | null }) => v.groupId)).toEqual([groupId, groupId, null])
    // the owner's own moves work: out of the group, and into it again
    expect((await api(owner, "PUT", `/videos/${videoIds[0]}`, { groupId: null })).body["video"].groupId).toBeNull()
    expect((await api(owner, "PUT", `/videos/${videoIds[2]}`, { groupId })).body["video"].groupId).toBe(groupId)
  })

  it("uploads videos into a project in order, in the web app's shape", async () => {
    const user = await newUser()
    const { projectId, groupId, videoIds } = await stockedProject(user)
    const project = (await api(user, "GET", `/projects/${projectId}`)).body["project"]
    expect(project.videos.map((v: { id: string }) => v.id)).toEqual(videoIds)
    expect(project.videos.map((v: { order: number }) => v.order)).toEqual([0, 1, 2])
    expect(project.videos[0]).toMatchObject({ fileName: "clip.mp4", fileSize: clips[0]!.length, mimeType: "video/mp4", groupId, width: 160, height: 120 })
    expect(project.videos[0].duration).toBeCloseTo(FIXTURES[0].durationSeconds, 1)
    expect(project.groups[0].videos.map((v: { id: string }) => v.id)).toEqual(videoIds.slice(0, 2))
    expect(await used(user.id)).toBe(clips.reduce((sum, c) => sum + c.length, 0))
    expect((await api(user, "GET", `/projects/${projectId}/videos`)).body["videos"]).toHaveLength(3)
    // the source file downloads through the private upload route, owner only
    const file = await fetch(app.url(project.videos[1].downloadUrl), { headers: user.auth })
    expect(Buffer.from(await file.arrayBuffer()).equals(clips[1]!)).toBe(true)
    expect((await api(user, "GET", "/stats")).body).toMatchObject({ totalProjects: 1, totalVideos: 3 })
    // a group deleted leaves its videos in the project, ungrouped
    await api(user, "DELETE", `/groups/${groupId}`)
    const after = (await api(user, "GET", `/projects/${projectId}`)).body["project"]
    expect(after.videos.map((v: { groupId: string | null }) => v.groupId)).toEqual([null, null, null])
    // deleting a video deletes its file and releases its quota
    const key = (await db.query("SELECT u.storage_key FROM video_mixer_videos v JOIN uploads u ON u.id = v.upload_id WHERE v.id = $1", [videoIds[2]]))
      .rows[0].storage_key as string
    const del = await api(user, "DELETE", `/videos/${videoIds[2]}`)
    expect(del.body).toEqual({ success: true, freedSpace: clips[2]!.length, storageUsed: clips[0]!.length + clips[1]!.length })
    expect(filesUnder(storageDir)).not.toContain(key)
    expect(await used(user.id)).toBe(clips[0]!.length + clips[1]!.length)
  })

  it("estimates as lumiku.md 4.1 says", async () => {
    const user = await newUser()
    const { projectId } = await stockedProject(user)
    const s = settings({ enableOrderMixing: true, enableGroupMixing: true, groupMixingMode: "random", videoResolution: "720p", frameRate: 60 })
    const r = await api(user, "POST", "/estimate", { projectId, totalVideos: 4, settings: s })
    expect(r.status).toBe(200)
    const perVideo = 1 + 1 + 2 + 2 + 3
    expect(creditCostPerOutput(s)).toBe(perVideo)
    expect(r.body).toEqual({
      success: true,
      estimate: {
        totalSourceVideos: 3,
        totalGroups: 1,
        // group mixing: one clip of group A (mean of 1.5 s and 2 s); the ungrouped clip is left out
        estimatedDurationPerVideo: expect.closeTo(1.75, 1),
        totalVideosToGenerate: 4,
        possibleCombinations: 6, // 3! (one group: no group factor)
        creditCostPerVideo: perVideo,
        totalCreditCost: perVideo * 4,
        strength: 3,
        strengthLabel: "Good"
      }
    })
    const all = await api(user, "POST", "/estimate", {
      projectId,
      totalVideos: 1,
      settings: settings({
        enableOrderMixing: true,
        enableDifferentStart: true,
        enableGroupMixing: true,
        groupMixingMode: "random",
        enableSpeedVariations: true,
        speedMin: 0.5,
        speedMax: 1.5,
        durationType: "fixed",
        fixedDuration: 12
      })
    })
    expect(all.body["estimate"]).toMatchObject({ strength: 5, strengthLabel: "Excellent", estimatedDurationPerVideo: 12 })
    const plain = await api(user, "POST", "/estimate", { projectId, totalVideos: 1, settings: settings({ enableSpeedVariations: true, speedMin: 0.5, speedMax: 1.5 }) })
    // every clip (4.5 s) at the mean speed 1.0
    expect(plain.body["estimate"]).toMatchObject({ strength: 1, strengthLabel: "Weak", creditCostPerVideo: 2 })
    expect(plain.body["estimate"].estimatedDurationPerVideo).toBeCloseTo(4.5, 0)
  })

  it("validates settings and totalVideos on estimate and generate, charging nothing", async () => {
    const user = await newUser()
    const { projectId } = await stockedProject(user)
    const emptyProject = await newProject(user)
    const otherProject = await stockedProject(user)
    const bad: Array<[string, unknown]> = [
      ["speedMin > speedMax", { projectId, totalVideos: 1, settings: settings({ speedMin: 1.5, speedMax: 1 }) }],
      ["speed out of range", { projectId, totalVideos: 1, settings: settings({ speedMax: 2.5 }) }],
      ["fixedDuration missing", { projectId, totalVideos: 1, settings: settings({ durationType: "fixed" }) }],
      ["fixedDuration too small", { projectId, totalVideos: 1, settings: settings({ durationType: "fixed", fixedDuration: 0 }) }],
      ["fixedDuration too large", { projectId, totalVideos: 1, settings: settings({ durationType: "fixed", fixedDuration: 601 }) }],
      ["totalVideos 0", { projectId, totalVideos: 0, settings: settings() }],
      ["totalVideos 1.5", { projectId, totalVideos: 1.5, settings: settings() }],
      ["totalVideos MAX+1", { projectId, totalVideos: MAX + 1, settings: settings() }],
      ["totalVideos as text", { projectId, totalVideos: "2", settings: settings() }],
      ["unknown setting", { projectId, totalVideos: 1, settings: { ...settings(), creditCost: 0 } }],
      ["unknown field", { projectId, totalVideos: 1, settings: settings(), cost: 1 }],
      ["bad enum", { projectId, totalVideos: 1, settings: { ...settings(), videoResolution: "8k" } }],
      ["missing setting", { projectId, totalVideos: 1, settings: { ...settings(), audioOption: undefined } }],
      ["fixedStartVideoId of another project", {
        projectId,
        totalVideos: 1,
        settings: settings({ fixedStartVideoId: otherProject.videoIds[0]! })
      }],
      ["fixedStartVideoId not a video", { projectId, totalVideos: 1, settings: settings({ fixedStartVideoId: "x" }) }],
      ["project without videos", { projectId: emptyProject, totalVideos: 1, settings: settings() }]
    ]
    // generate is limited to 5 a minute per user: every case on estimate (the same body), five on generate
    const onGenerate = new Set(["totalVideos MAX+1", "unknown setting", "fixedStartVideoId of another project", "fixedStartVideoId not a video", "project without videos"])
    for (const [what, body] of bad) {
      const route = onGenerate.has(what) ? "/generate" : "/estimate"
      const r = await api(user, "POST", route, body)
      expect({ what, status: r.status, code: r.body["code"] }).toEqual({ what, status: 400, code: "VALIDATION_ERROR" })
      expect(r.body["message"]).toBe(r.body["error"])
    }
    expect(await balance(user.id)).toBe(100)
    expect((await db.query("SELECT count(*)::int AS n FROM generations WHERE user_id = $1", [user.id])).rows[0].n).toBe(0)
  }, 60_000)

  it("charges exactly creditCostPerOutput x totalVideos, stores the pending row with its snapshot, and answers the web app's shape", async () => {
    const user = await newUser()
    const { projectId, groupId, videoIds } = await stockedProject(user)
    const s = settings({ enableOrderMixing: true, videoResolution: "1080p", videoBitrate: "high", fixedStartVideoId: videoIds[2]! })
    const cost = creditCostPerOutput(s) * 3
    expect(cost).toBe((1 + 1 + 5 + 2) * 3)
    const r = await api(user, "POST", "/generate", { projectId, totalVideos: 3, settings: s })
    expect(r.status).toBe(201)
    expect(r.body).toMatchObject({ success: true, creditUsed: cost, creditBalance: 100 - cost, message: expect.any(String) })
    expect(await balance(user.id)).toBe(100 - cost)
    const generation = r.body["generation"]
    expect(generation).toMatchObject({
      projectId,
      status: "pending",
      progress: 0,
      totalVideos: 3,
      creditUsed: cost,
      completedAt: null,
      outputPaths: null,
      enableOrderMixing: true,
      videoResolution: "1080p",
      videoBitrate: "high",
      fixedStartVideoId: videoIds[2],
      fixedDuration: null,
      audioOption: "keep"
    })
    const row = (await db.query("SELECT * FROM generations WHERE id = $1", [generation.id])).rows[0]
    expect(row).toMatchObject({ app: "video-mixer", project_id: projectId, status: "pending", units_requested: 3, charged: String(cost) })
    expect(row.settings.clips.map((c: { videoId: string }) => c.videoId)).toEqual(videoIds)
    expect(row.settings.clips[0]).toMatchObject({ groupId, order: 0, width: 160, height: 120 })
    expect(row.settings.clips[0].storageKey).toMatch(new RegExp(`^uploads/${user.id}/`))
    expect(row.settings.groups).toEqual([{ groupId, order: 0 }])

    const listed = await api(user, "GET", `/projects/${projectId}/generations`)
    expect(listed.body["generations"]).toEqual([generation])
    expect((await api(user, "GET", "/stats")).body["totalGenerations"]).toBe(1)

    // the snapshot's files cannot go while the generation is pending: 409, nothing deleted
    const busy = await api(user, "DELETE", `/videos/${videoIds[0]}`)
    expect(busy.status).toBe(409)
    expect(busy.body["code"]).toBe("PROJECT_BUSY")
    expect((await api(user, "GET", `/projects/${projectId}/videos`)).body["videos"]).toHaveLength(3)
    // its outputs do not exist yet, and nobody else sees it
    const stranger = await newUser()
    expect((await api(user, "GET", `/download/${generation.id}/0`)).status).toBe(409)
    expect((await api(user, "GET", `/download-all/${generation.id}`)).status).toBe(409)
    expect((await api(stranger, "GET", `/download/${generation.id}/0`)).status).toBe(404)
    expect((await api(stranger, "GET", `/download-all/${generation.id}`)).status).toBe(404)

    // once cancelled (refunded), the video can go
    expect((await call(app, "POST", `/api/generations/${generation.id}/cancel`, undefined, user.auth)).status).toBe(200)
    expect(await balance(user.id)).toBe(100)
    expect((await api(user, "DELETE", `/videos/${videoIds[0]}`)).status).toBe(200)
  })

  it("answers 402 when the credits are short, charges an enterprise user 0, and lets one of two concurrent generates through", async () => {
    const poor = await newUser(5)
    const poorProject = await stockedProject(poor)
    const short = await api(poor, "POST", "/generate", { projectId: poorProject.projectId, totalVideos: 3, settings: settings({ enableOrderMixing: true }) })
    expect(short.status).toBe(402)
    expect(short.body).toMatchObject({ success: false, code: "INSUFFICIENT_CREDITS", required: 6, current: 5 })
    expect(await balance(poor.id)).toBe(5)
    expect((await api(poor, "GET", `/projects/${poorProject.projectId}/generations`)).body["generations"]).toEqual([])

    const enterprise = await newUser(0)
    await db.query("UPDATE users SET tags = array['enterprise_unlimited'] WHERE id = $1", [enterprise.id])
    const ent = await stockedProject(enterprise)
    const free = await api(enterprise, "POST", "/generate", { projectId: ent.projectId, totalVideos: 5, settings: settings({ videoResolution: "4k" }) })
    expect(free.status).toBe(201)
    expect(free.body).toMatchObject({ creditUsed: 0, creditBalance: 0 })
    expect(free.body["generation"]).toMatchObject({ creditUsed: 0, status: "pending" })

    // credits for one generation of 2 x 5 credits, two at once: exactly one is accepted
    const racer = await newUser(15)
    const race = await stockedProject(racer)
    const s = settings({ videoResolution: "720p", enableOrderMixing: true })
    expect(creditCostPerOutput(s)).toBe(4)
    const both = await Promise.all([1, 2].map(() => api(racer, "POST", "/generate", { projectId: race.projectId, totalVideos: 2, settings: s })))
    expect(both.map((r) => r.status).sort()).toEqual([201, 402])
    expect(await balance(racer.id)).toBe(15 - 8)
    expect((await db.query("SELECT count(*)::int AS n FROM generations WHERE user_id = $1", [racer.id])).rows[0].n).toBe(1)
  })

  it("limits generate to 5 a minute per user (429 with Retry-After)", async () => {
    const user = await newUser()
    const { projectId } = await stockedProject(user)
    const statuses: Array<number> = []
    for (let i = 0; i < 6; i++) {
      const r = await api(user, "POST", "/generate", { projectId, totalVideos: 0, settings: settings() })
      statuses.push(r.status)
      if (r.status === 429) expect(r.headers.get("retry-after")).not.toBeNull()
    }
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429])
  })

  it("deletes a project with its files and quota, cancelling (and refunding) its pending generation first", async () => {
    const user = await newUser()
    const { projectId, videoIds } = await stockedProject(user)
    const keys = (await db.query<{ storage_key: string }>(
      "SELECT u.storage_key FROM video_mixer_videos v JOIN uploads u ON u.id = v.upload_id WHERE v.project_id = $1",
      [projectId]
    )).rows.map((r) => r.storage_key)
    expect(keys).toHaveLength(3)
    const total = clips.reduce((sum, c) => sum + c.length, 0)
    expect(await used(user.id)).toBe(total)
    const generated = await api(user, "POST", "/generate", { projectId, totalVideos: 2, settings: settings() })
    expect(generated.status).toBe(201)
    expect(await balance(user.id)).toBe(98)

    const stranger = await newUser()
    expect((await api(stranger, "DELETE", `/projects/${projectId}`)).status).toBe(404)
    const deleted = await api(user, "DELETE", `/projects/${projectId}`)
    expect(deleted.body).toEqual({ success: true, freedSpace: total, deletedVideos: 3, deletedGenerations: 1 })
    expect(await balance(user.id)).toBe(100)
    expect(await used(user.id)).toBe(0)
    const left = filesUnder(storageDir)
    for (const key of keys) expect(left).not.toContain(key)
    expect((await db.query("SELECT count(*)::int AS n FROM uploads WHERE user_id = $1", [user.id])).rows[0].n).toBe(0)
    expect((await db.query("SELECT count(*)::int AS n FROM video_mixer_videos WHERE id = ANY($1::uuid[])", [videoIds])).rows[0].n).toBe(0)
    expect((await db.query("SELECT count(*)::int AS n FROM generations WHERE project_id = $1", [projectId])).rows[0].n).toBe(0)
    const ledger = (await db.query<{ kind: string; delta: string }>("SELECT kind, delta FROM credit_ledger WHERE user_id = $1 ORDER BY id", [user.id])).rows
    expect(ledger.map((r) => `${r.kind}:${r.delta}`).slice(1)).toEqual(["usage:-2", "refund:2"])
  })

  it("lists the video mixer in the app catalogue", async () => {
    const user = await newUser()
    const apps = await call(app, "GET", "/api/apps", undefined, user.auth)
    expect(apps.body["apps"].map((a: { appId: string }) => a.appId)).toContain("video-mixer")
  })
})
