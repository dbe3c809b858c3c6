import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Chunk, Effect, Stream } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { Ledger } from "../../src/services/credits/Ledger.js"
import { Generations, refundFor } from "../../src/services/generations/Generations.js"
import { Storage } from "../../src/services/platform/Storage.js"
import { creditCostPerOutput, type MixClip, type MixJobSettings } from "../../src/services/videoMixer/MixSettings.js"
import { videoMixerApp } from "../../src/services/videoMixer/VideoMixerApp.js"
import { outputKey, videoMixerHandler } from "../../src/workers/videoMixer/videoMixerHandler.js"
import { call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { ffmpegBinary } from "../support/ffmpegBinary.js"
import { eventually } from "../support/jobHarness.js"
import { type InProcessApp, type InProcessServices, startApp } from "../support/inProcessApp.js"
import { baseSettings, clipsOf, makeFixtures, probeFile } from "./media.js"

const PASSWORD = "Correct-Horse-42"

/** Live pids whose parent is this process (FfmpegLive's children: setpriv execs ffmpeg in place). */
const childrenOfThisProcess = (): Array<{ pid: number; cmdline: string }> =>
  fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e)).flatMap((entry) => {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (Number(fields[1]) !== process.pid || fields[0] === "Z") return []
      return [{ pid: Number(entry), cmdline: fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ") }]
    } catch {
      return []
    }
  })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return !fs.readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ")
  } catch {
    return false
  }
}

describe("Video Mixer generations through the job system", () => {
  let app: InProcessApp
  let db: pg.Pool
  let work: string
  let storageDir: string
  let keys: Array<string>
  const hits: Array<string> = []
  let hitServer: http.Server
  let hitUrl: string

  const run = <A, E>(effect: Effect.Effect<A, E, InProcessServices>) => Effect.runPromise(Effect.provide(effect, app.context))
  const put = (key: string, bytes: Uint8Array) => run(Effect.flatMap(Storage, (s) => s.put(key, Stream.make(bytes)))).then((s) => s.key)
  const read = (key: string) =>
    run(Effect.flatMap(Storage, (s) => Effect.flatMap(s.get(key), Stream.runCollect))).then((c) => Buffer.concat(Chunk.toReadonlyArray(c)))
  const exists = (key: string) => run(Effect.flatMap(Storage, (s) => s.exists(key)))
  const balance = (userId: string) => run(Effect.flatMap(Ledger, (l) => l.balance(userId)))
  const row = async (id: string) => (await db.query("SELECT * FROM generations WHERE id = $1", [id])).rows[0]
  const settled = (id: string, status: string, within = 60_000) =>
    eventually(async () => ((await row(id))?.status === status ? row(id) : undefined), within, `generation ${status}`)

  const newUser = async () => {
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("vmix"), password: PASSWORD })
    expect(r.status).toBe(201)
    return r.body["data"].user.id as string
  }
  /** Charged as the routes charge: the per-output cost times the outputs. */
  const generate = (userId: string, settings: MixJobSettings, units: number) =>
    run(Effect.flatMap(Generations, (g) =>
      g.create({ userId, app: videoMixerApp.appId, units, cost: creditCostPerOutput(settings) * units, settings })))

  /** A valid MP4 whose video sample entry names an unknown codec: ffprobe reads it, ffmpeg has no decoder for it. */
  const undecodable = () => {
    const bytes = Buffer.from(fs.readFileSync(path.join(work, "a.mp4")))
    const entry = bytes.indexOf("avc1", 100) // past the ftyp brands: the stsd sample entry
    bytes.write("zzzz", entry, "latin1")
    return new Uint8Array(bytes)
  }
  const grouped = (clips: ReadonlyArray<MixClip>): MixJobSettings => ({
    ...baseSettings(clips.map((c, k) => ({ ...c, groupId: "g", order: k }))),
    enableGroupMixing: true,
    groups: [{ groupId: "g", order: 0 }]
  })

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-vm-e2e-"))
    hitServer = http.createServer((req, res) => {
      hits.push(req.url ?? "")
      res.end("#EXTM3U\n")
    })
    await new Promise<void>((resolve) => hitServer.listen(0, "127.0.0.1", resolve))
    hitUrl = `http://127.0.0.1:${(hitServer.address() as AddressInfo).port}`
    const env = testEnv({ RATE_LIMIT_REGISTER: "1000 per 1 minute", RATE_LIMIT_GENERAL: "10000 per 1 minute" })
    storageDir = env["STORAGE_DIR"]!
    app = await startApp(env, { jobHandlers: [videoMixerHandler], apps: [videoMixerApp] })
    db = new pg.Pool({ connectionString: inject("databaseUrl"), max: 2 })
    const files = await makeFixtures(work)
    keys = await Promise.all(files.map((file, k) => put(`uploads/fixtures/clip_${k}.mp4`, new Uint8Array(fs.readFileSync(file)))))
  }, 60_000)

  afterAll(async () => {
    await app?.close()
    await db?.end()
    hitServer?.close()
    fs.rmSync(work, { recursive: true, force: true })
  })

  it("completes with every output stored, charged once", async () => {
    const user = await newUser()
    const settings = { ...baseSettings(clipsOf(keys)), enableOrderMixing: true, audioOption: "mute" as const }
    const generation = await generate(user, settings, 2)
    const cost = creditCostPerOutput(settings) * 2
    expect(generation).toMatchObject({ status: "pending", charged: cost })
    const done = await settled(generation.id, "completed")
    expect(done).toMatchObject({ units_delivered: 2, progress: 100, refunded: "0", charged: String(cost) })
    expect(done.outputs.map((o: { key: string }) => o.key)).toEqual([outputKey(generation.id, 0), outputKey(generation.id, 1)])
    for (const output of done.outputs as Array<{ key: string; size: number; width: number; height: number }>) {
      const bytes = await read(output.key)
      expect(bytes.length).toBe(output.size)
      const file = path.join(work, path.basename(output.key))
      fs.writeFileSync(file, bytes)
      expect(await probeFile(file)).toMatchObject({ width: 480, height: 854, audio: undefined })
      expect(output).toMatchObject({ width: 480, height: 854 })
    }
    expect(await balance(user)).toBe(100 - cost)
  }, 90_000)

  it("skips outputs whose clip is corrupt, undecodable, a playlist or a concat list; ends partial with the exact refund; follows no reference", async () => {
    const user = await newUser()
    const playlist = `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n${hitUrl}/seg.ts\n#EXTINF:1,\n/etc/passwd\n#EXT-X-ENDLIST\n`
    const concat = `ffconcat version 1.0\nfile '${hitUrl}/x.mp4'\nfile '/etc/passwd'\n`
    const hostile = [
      await put(`uploads/${user}/playlist.mp4`, new TextEncoder().encode(playlist)),
      await put(`uploads/${user}/concat.mp4`, new TextEncoder().encode(concat)),
      await put(`uploads/${user}/garbage.mp4`, new Uint8Array(fs.readFileSync(path.join(work, "a.mp4")).subarray(0, 2000))),
      await put(`uploads/${user}/undecodable.mp4`, undecodable())
    ]
    const good = clipsOf(keys)[0]!
    // one group, sequential: output i uses clip i of the group
    const settings = grouped([good, ...hostile.map((storageKey, k) => ({ ...good, videoId: `bad-${k}`, storageKey }))])
    const generation = await generate(user, settings, 5)
    const cost = creditCostPerOutput(settings) * 5
    const done = await settled(generation.id, "partial")
    const refund = refundFor(cost, 5, 1)
    expect(done).toMatchObject({ units_delivered: 1, refunded: String(refund), charged: String(cost), progress: 100 })
    expect(done.outputs.map((o: { key: string }) => o.key)).toEqual([outputKey(generation.id, 0)])
    for (const i of [1, 2, 3, 4]) expect(await exists(outputKey(generation.id, i))).toBe(false)
    // the undecodable clip passed the probe and made ffmpeg itself exit with an error: that output alone was lost
    expect(app.logLines().filter((line) => line.includes("video mixer output failed; skipped") && line.includes(generation.id))).toHaveLength(1)
    expect((await read(outputKey(generation.id, 0))).toString("latin1")).not.toContain("root:")
    expect(await balance(user)).toBe(100 - cost + refund)
    expect(hits).toEqual([])
  }, 90_000)

  it("a clip key with shell syntax runs nothing and creates no file; no usable clip fails with a full refund", async () => {
    const user = await newUser()
    const canary = path.join(work, "canary")
    fs.mkdirSync(canary)
    const good = clipsOf(keys)[0]!
    const settings = grouped([
      { ...good, videoId: "v1", storageKey: `uploads/${user}/$(touch pwned).mp4` },
      { ...good, videoId: "v2", storageKey: `uploads/${user}/a;touch pwned;.mp4` },
      { ...good, videoId: "v3", storageKey: `../${path.relative(storageDir, canary)}/$(touch pwned)` }
    ])
    const cwd = process.cwd()
    const generation = await generate(user, settings, 3)
    const cost = creditCostPerOutput(settings) * 3
    const done = await settled(generation.id, "failed")
    expect(done).toMatchObject({ units_delivered: 0, refunded: String(cost), error_code: "GENERATION_FAILED" })
    expect(await balance(user)).toBe(100)
    for (const dir of [cwd, storageDir, canary, os.tmpdir(), work]) expect(fs.existsSync(path.join(dir, "pwned"))).toBe(false)
  }, 90_000)

  it("cancel mid-render kills ffmpeg, refunds exactly once, and the status stays cancelled", async () => {
    const user = await newUser()
    const long = path.join(work, "long.mp4")
    execFileSync(await ffmpegBinary(), [
      "-v", "error", "-f", "lavfi", "-i", "testsrc2=duration=90:size=160x120:rate=30", "-f", "lavfi", "-i", "sine=duration=90",
      "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", long
    ])
    const key = await put(`uploads/${user}/long.mp4`, new Uint8Array(fs.readFileSync(long)))
    const longClip: MixClip = { videoId: "long", groupId: null, order: 0, storageKey: key, durationSeconds: 90, width: 160, height: 120 }
    // output 1 mixes a short clip and is stored; output 2 mixes the long one at 1080p60, and is cancelled while it renders
    const settings: MixJobSettings = { ...grouped([clipsOf(keys)[2]!, longClip]), videoResolution: "1080p", frameRate: 60 }
    const generation = await generate(user, settings, 3)
    const cost = creditCostPerOutput(settings) * 3
    expect(await balance(user)).toBe(100 - cost)
    const ffmpeg = await eventually(async () =>
      childrenOfThisProcess().find((p) => p.cmdline.includes("filter_complex") && p.cmdline.includes("output_2.mp4")), 60_000, "ffmpeg rendering")
    expect(await row(generation.id)).toMatchObject({ status: "processing", units_delivered: 1 })
    expect(await exists(outputKey(generation.id, 0))).toBe(true)

    const cancelled = await run(Effect.flatMap(Generations, (g) => g.cancel(generation.id, user)))
    expect(cancelled.status).toBe("cancelled")
    await eventually(async () => (alive(ffmpeg.pid) ? undefined : true), 10_000, "ffmpeg gone")
    expect(childrenOfThisProcess().filter((p) => p.cmdline.includes("filter_complex"))).toEqual([])
    expect(await balance(user)).toBe(100)
    // no child of this process is left, and whatever the stopped job did afterwards changed no settlement
    await eventually(async () => (childrenOfThisProcess().length === 0 ? true : undefined), 10_000, "no child process left")
    await new Promise((r) => setTimeout(r, 1500))
    expect(await row(generation.id)).toMatchObject({ status: "cancelled", refunded: String(cost), outputs: [], units_delivered: 0 })
    // the output stored before the cancel was deleted with the render
    expect(await exists(outputKey(generation.id, 0))).toBe(false)
    expect(await exists(outputKey(generation.id, 1))).toBe(false)
    expect(await balance(user)).toBe(100)
  }, 120_000)
})
