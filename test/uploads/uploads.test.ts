import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { HttpServerRequest } from "@effect/platform"
import { Effect } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { restrictInputs } from "../../src/layers/platform/FfmpegLive.js"
import { Ffmpeg, fileArg } from "../../src/services/platform/Ffmpeg.js"
import { Uploads } from "../../src/services/uploads/Uploads.js"
import { call, freshEmail } from "../support/api.js"
import { testEnv } from "../support/env.js"
import { type InProcessApp, startApp, waitUntil } from "../support/inProcessApp.js"
import { ffmpegBinary } from "../support/ffmpegBinary.js"

const LIMIT = 200_000
const PASSWORD = "Correct-Horse-42"

/** Every file under `dir`, relative. */
const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))

/** Temp files of the pipeline still on disk (each upload is written to lumiku-ffmpeg-<x>/upload). */
const eventually = (probe: () => Promise<boolean>, withinMs: number) => waitUntil(probe, withinMs)

const leftTempUploads = () =>
  fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith("lumiku-ffmpeg-") && fs.existsSync(path.join(os.tmpdir(), d, "upload")))

describe("uploads", () => {
  let app: InProcessApp
  let db: pg.Pool
  let storageDir: string
  let work: string
  let valid: Buffer
  const hits: Array<string> = []
  let hitServer: http.Server
  let hitUrl: string

  const newUser = async () => {
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("upl"), password: PASSWORD })
    expect(r.status).toBe(201)
    return { id: r.body["data"].user.id as string, token: r.body["data"].token as string }
  }
  const upload = async (token: string, kind: string, bytes: Uint8Array, name: string, type = "video/mp4") => {
    const form = new FormData()
    form.append("file", new Blob([bytes], { type }), name)
    const res = await fetch(app.url(`/api/uploads/${kind}`), { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form })
    return { status: res.status, body: await res.json() as Record<string, any> }
  }
  const used = async (userId: string) =>
    Number((await db.query("SELECT used_bytes FROM storage_usage WHERE user_id = $1", [userId])).rows[0]?.used_bytes ?? 0)
  const rowsOf = async (userId: string) =>
    (await db.query<{ storage_key: string; size_bytes: string }>("SELECT storage_key, size_bytes FROM uploads WHERE user_id = $1", [userId])).rows
  let ffmpeg: string
  const ffmpegRun = (...args: Array<string>) => execFileSync(ffmpeg, ["-v", "error", "-y", ...args])

  beforeAll(async () => {
    ffmpeg = await ffmpegBinary()
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-upload-media-"))
    ffmpegRun("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-f", "lavfi", "-i", "sine=frequency=440",
      "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path.join(work, "valid.mp4"))
    ffmpegRun("-f", "lavfi", "-i", "color=red:size=16x16", "-frames:v", "1", path.join(work, "red.png"))
    valid = fs.readFileSync(path.join(work, "valid.mp4"))
    hitServer = http.createServer((req, res) => {
      hits.push(req.url ?? "")
      res.end("#EXTM3U\n")
    })
    await new Promise<void>((resolve) => hitServer.listen(0, "127.0.0.1", resolve))
    hitUrl = `http://127.0.0.1:${(hitServer.address() as AddressInfo).port}`
    const env = testEnv({
      UPLOAD_VIDEO_MAX_BYTES: String(LIMIT),
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
    hitServer?.close()
    fs.rmSync(work, { recursive: true, force: true })
  })

  it("stores a valid video under a server-chosen name, downloadable only by its owner, with Range", async () => {
    const owner = await newUser()
    const other = await newUser()
    const r = await upload(owner.token, "video", valid, "../../etc/passwd.mp4")
    expect(r.status).toBe(201)
    expect(r.body["upload"]).toMatchObject({ kind: "video", mime: "video/mp4", size: valid.length, width: 160, height: 120, name: "passwd" })
    expect(r.body["upload"].durationSeconds).toBeGreaterThan(0.5)
    expect(r.body["storageUsed"]).toBe(valid.length)
    const [row] = await rowsOf(owner.id)
    expect(row!.storage_key).toMatch(new RegExp(`^uploads/${owner.id}/[0-9a-f-]{36}\\.mp4$`))
    expect(filesUnder(storageDir)).toContain(row!.storage_key)

    const url = app.url(r.body["upload"].downloadUrl)
    const full = await fetch(url, { headers: { authorization: `Bearer ${owner.token}` } })
    expect(full.status).toBe(200)
    expect(full.headers.get("content-length")).toBe(String(valid.length))
    expect(full.headers.get("x-content-type-options")).toBe("nosniff")
    expect(full.headers.get("content-disposition")).toBe(`attachment; filename="passwd.mp4"; filename*=UTF-8''passwd.mp4`)
    expect(Buffer.from(await full.arrayBuffer()).equals(valid)).toBe(true)

    const part = await fetch(url, { headers: { authorization: `Bearer ${owner.token}`, range: "bytes=10-99" } })
    expect(part.status).toBe(206)
    expect(part.headers.get("content-range")).toBe(`bytes 10-99/${valid.length}`)
    expect(Buffer.from(await part.arrayBuffer()).equals(valid.subarray(10, 100))).toBe(true)
    const suffix = await fetch(url, { headers: { authorization: `Bearer ${owner.token}`, range: "bytes=-5" } })
    expect(Buffer.from(await suffix.arrayBuffer()).equals(valid.subarray(valid.length - 5))).toBe(true)
    const beyond = await fetch(url, { headers: { authorization: `Bearer ${owner.token}`, range: `bytes=${valid.length}-` } })
    expect(beyond.status).toBe(416)
    expect(beyond.headers.get("content-range")).toBe(`bytes */${valid.length}`)

    const stranger = await fetch(url, { headers: { authorization: `Bearer ${other.token}` } })
    expect(stranger.status).toBe(404)
    expect(await stranger.json()).toMatchObject({ success: false, code: "UPLOAD_NOT_FOUND" })
    expect((await fetch(url)).status).toBe(401)

    // delete: only the owner's, and it frees the quota and the stored object
    const foreign = await fetch(app.url(`/api/uploads/${r.body["upload"].id}`), { method: "DELETE", headers: { authorization: `Bearer ${other.token}` } })
    expect(foreign.status).toBe(404)
    const del = await fetch(app.url(`/api/uploads/${r.body["upload"].id}`), { method: "DELETE", headers: { authorization: `Bearer ${owner.token}` } })
    expect(await del.json()).toEqual({ success: true, freedSpace: valid.length, storageUsed: 0 })
    expect(await used(owner.id)).toBe(0)
    expect(filesUnder(storageDir)).not.toContain(row!.storage_key)
  })

  it("refuses what is not media of the kind, with the right status, leaving nothing on disk or reserved", async () => {
    const user = await newUser()
    const png = fs.readFileSync(path.join(work, "red.png"))
    const over = Buffer.concat([valid, Buffer.alloc(LIMIT + 1 - valid.length)])
    const cases: Array<[string, Uint8Array, string, string, number, string]> = [
      ["a PNG renamed .mp4", png, "clip.mp4", "video", 415, "UNSUPPORTED_FILE_TYPE"],
      ["text as .mp4", Buffer.from("hello, this is not a video\n".repeat(50)), "clip.mp4", "video", 415, "UNSUPPORTED_FILE_TYPE"],
      ["HTML declared as an image", Buffer.from("<html><script>alert(1)</script></html>"), "x.png", "image", 415, "UNSUPPORTED_FILE_TYPE"],
      ["SVG declared as an image", Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "x.svg", "image", 415, "UNSUPPORTED_FILE_TYPE"],
      ["a zero-byte file", new Uint8Array(0), "empty.mp4", "video", 415, "UNSUPPORTED_FILE_TYPE"],
      ["a truncated MP4", valid.subarray(0, Math.floor(valid.length * 0.6)), "cut.mp4", "video", 422, "UNREADABLE_MEDIA"],
      ["a video one byte over the limit", over, "big.mp4", "video", 413, "UPLOAD_TOO_LARGE"],
      ["an HLS playlist as video", Buffer.from(`#EXTM3U\n#EXTINF:1,\n${hitUrl}/seg.ts\n#EXTINF:1,\n/etc/passwd\n`), "a.m3u8", "video", 415, "UNSUPPORTED_FILE_TYPE"],
      ["a concat list as video", Buffer.from(`ffconcat version 1.0\nfile '${hitUrl}/x.mp4'\nfile '/etc/passwd'\n`), "a.txt", "video", 415, "UNSUPPORTED_FILE_TYPE"]
    ]
    for (const [label, bytes, name, kind, status, code] of cases) {
      const r = await upload(user.token, kind, bytes, name)
      expect({ label, status: r.status, code: r.body["code"] }).toEqual({ label, status, code })
      expect(r.body).toMatchObject({ success: false, requestId: expect.any(String), message: expect.any(String) })
    }
    expect(hits).toEqual([])
    expect(await rowsOf(user.id)).toEqual([])
    expect(await used(user.id)).toBe(0)
    expect(filesUnder(storageDir).filter((f) => f.includes(user.id))).toEqual([])
    expect(leftTempUploads()).toEqual([])
    // exactly at the limit passes the size check
    const atLimit = await upload(user.token, "video", over.subarray(0, LIMIT), "edge.mp4")
    expect(atLimit.status).not.toBe(413)
  })

  it("accepts audio and images by their own allowlists, and probes audio for an audio stream", async () => {
    const user = await newUser()
    ffmpegRun("-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", "-c:a", "libmp3lame", path.join(work, "tone.mp3"))
    ffmpegRun("-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", path.join(work, "mute.mp4"))
    const mp3 = await upload(user.token, "audio", fs.readFileSync(path.join(work, "tone.mp3")), "tone.mp3", "audio/mpeg")
    expect(mp3.status).toBe(201)
    expect(mp3.body["upload"]).toMatchObject({ kind: "audio", mime: "audio/mpeg", width: null })
    const png = await upload(user.token, "image", fs.readFileSync(path.join(work, "red.png")), "red.png", "image/png")
    expect(png.status).toBe(201)
    expect(png.body["upload"]).toMatchObject({ kind: "image", mime: "image/png" })
    // a video declared as audio: its signature is not an audio type
    expect((await upload(user.token, "audio", valid, "song.mp3", "audio/mpeg")).status).toBe(415)
    const download = await fetch(app.url(png.body["upload"].downloadUrl), { headers: { authorization: `Bearer ${user.token}` } })
    expect(download.headers.get("content-type")).toBe("image/png")
    expect(download.headers.get("x-content-type-options")).toBe("nosniff")
    // an mp4 with no video stream is not a video
    ffmpegRun("-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", "-c:a", "aac", path.join(work, "audio-only.mp4"))
    const noVideo = await upload(user.token, "video", fs.readFileSync(path.join(work, "audio-only.mp4")), "a.mp4")
    expect(noVideo.status).toBe(422)
    expect(noVideo.body["message"]).toMatch(/no video stream/)
  })

  it("takes names with path traversal or shell syntax as display text only", async () => {
    const user = await newUser()
    const cwdBefore = fs.readdirSync(process.cwd())
    const names = [
      "..\\..\\windows\\x.mp4", "/etc/shadow", "a/../../b.mp4", "%2e%2e%2fx.mp4", "%252e%252e%252f.mp4", "..././x.mp4",
      "\\\\localhost\\c$\\windows\\win.ini", "////../../x.mp4", "/proc/self/environ", "x.php%00.mp4", ".htaccess",
      "x.mp4$(touch pwned)", "$(touch pwned).mp4", "`touch pwned`.mp4", "x.mp4\"; touch pwned; \""
    ]
    for (const name of names) {
      const r = await upload(user.token, "video", valid, name)
      expect(r.status).toBe(201)
      expect(r.body["upload"].name).not.toMatch(/[/\\$`]/)
    }
    const keys = (await rowsOf(user.id)).map((r) => r.storage_key)
    expect(keys).toHaveLength(names.length)
    for (const key of keys) expect(key).toMatch(new RegExp(`^uploads/${user.id}/[0-9a-f-]{36}\\.mp4$`))
    for (const dir of [process.cwd(), storageDir, os.tmpdir()]) expect(fs.existsSync(path.join(dir, "pwned"))).toBe(false)
    expect(fs.readdirSync(process.cwd())).toEqual(cwdBefore)
    expect(await used(user.id)).toBe(valid.length * names.length)
  })

  it("releases everything when the client goes away mid-upload", async () => {
    const user = await newUser()
    const boundary = "----lumiku-abort"
    const req = http.request(app.url("/api/uploads/video"), {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "content-type": `multipart/form-data; boundary=${boundary}`, "transfer-encoding": "chunked" }
    })
    req.on("error", () => {})
    req.write(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="a.mp4"\r\ncontent-type: video/mp4\r\n\r\n`)
    req.write(valid.subarray(0, 4096))
    // the reservation (the kind's limit, as the body has no length) is taken while the body streams
    await eventually(async () => (await used(user.id)) === LIMIT, 5_000)
    req.destroy()
    await eventually(async () => (await used(user.id)) === 0 && leftTempUploads().length === 0, 5_000)
    expect(await rowsOf(user.id)).toEqual([])
    expect(filesUnder(storageDir).filter((f) => f.includes(user.id))).toEqual([])
  })

  it("keeps the quota exact under concurrent uploads of one user", async () => {
    const user = await newUser()
    // The reservation is the request's length (the file plus its form); three fit, a fourth file cannot.
    const form = new FormData()
    form.append("file", new Blob([valid], { type: "video/mp4" }), "c.mp4")
    const bodyLength = (await new Response(form).arrayBuffer()).byteLength
    const quota = 3 * bodyLength + 10
    expect(4 * valid.length).toBeGreaterThan(quota)
    await db.query("INSERT INTO storage_usage (user_id, quota_bytes) VALUES ($1, $2)", [user.id, quota])
    const results = await Promise.all(Array.from({ length: 8 }, () => upload(user.token, "video", valid, "c.mp4")))
    const ok = results.filter((r) => r.status === 201)
    const refused = results.filter((r) => r.status === 413)
    expect(ok).toHaveLength(3)
    expect(refused).toHaveLength(5)
    for (const r of refused) {
      expect(r.body).toMatchObject({ code: "STORAGE_QUOTA_EXCEEDED", quota, used: expect.any(Number), available: expect.any(Number), fileSize: expect.any(Number) })
    }
    expect(await used(user.id)).toBe(3 * valid.length)
    const rows = await rowsOf(user.id)
    expect(rows.reduce((sum, r) => sum + Number(r.size_bytes), 0)).toBe(3 * valid.length)
    expect(filesUnder(storageDir).filter((f) => f.includes(user.id))).toHaveLength(3)
  })

  it("gives an app route its fields first, a check before anything is written, and undoes a file it then refuses", async () => {
    const user = await newUser()
    // the body encoded up front, then parsed as the server parses a request (a streamed FormData
    // body that is not read to its end makes undici reject on its own, outside the test)
    const parts = async (entries: Array<[string, string | Blob]>) => {
      const form = new FormData()
      for (const [key, value] of entries) {
        if (typeof value === "string") form.append(key, value)
        else form.append(key, value, "clip.mp4")
      }
      const encoded = new Response(form)
      const body = Buffer.from(await encoded.arrayBuffer())
      const headers = { "content-type": encoded.headers.get("content-type")! }
      return HttpServerRequest.fromWeb(new Request("http://local/upload", { method: "POST", body, headers })).multipartStream
    }
    const seen: Array<Record<string, string>> = []
    const receive = async (entries: Array<[string, string | Blob]>) => {
      const stream = await parts(entries)
      return Effect.runPromise(Effect.either(Effect.provide(
        Effect.flatMap(Uploads, (uploads) =>
          uploads.receive({
            userId: user.id,
            kind: "video",
            parts: stream,
            fields: ["projectId", "groupId"],
            beforeStore: (fields) => {
              seen.push({ ...fields })
              return fields["projectId"] === "someone-elses" ? Effect.fail("not your project" as const) : Effect.void
            }
          })
        ),
        app.context
      )))
    }
    const clip = new Blob([valid], { type: "video/mp4" })

    const ok = await receive([["projectId", "p1"], ["groupId", "g1"], ["file", clip]])
    expect(ok._tag).toBe("Right")
    if (ok._tag === "Right") expect(ok.right.fields).toEqual({ projectId: "p1", groupId: "g1" })
    expect(seen).toEqual([{ projectId: "p1", groupId: "g1" }])
    const afterOne = await used(user.id)
    expect(afterOne).toBe(valid.length)

    const refused = await receive([["projectId", "someone-elses"], ["file", clip]])
    expect(refused).toMatchObject({ _tag: "Left", left: "not your project" })
    const late = await receive([["projectId", "p1"], ["file", clip], ["groupId", "g2"]])
    expect(late).toMatchObject({ _tag: "Left", left: { _tag: "InvalidUpload" } })
    const unknown = await receive([["projectId", "p1"], ["role", "admin"], ["file", clip]])
    expect(unknown).toMatchObject({ _tag: "Left", left: { _tag: "InvalidUpload" } })
    const none = await receive([["projectId", "p1"]])
    expect(none).toMatchObject({ _tag: "Left", left: { _tag: "InvalidUpload" } })
    // the file stored before the late field was removed again; nothing else was kept or reserved
    expect(await used(user.id)).toBe(afterOne)
    expect(await rowsOf(user.id)).toHaveLength(1)
    expect(filesUnder(storageDir).filter((f) => f.includes(user.id))).toHaveLength(1)
  })

  it("ffprobe and ffmpeg never follow a playlist or concat list to another file or the network", async () => {
    const playlist = path.join(work, "evil.m3u8")
    fs.writeFileSync(playlist, `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n${hitUrl}/seg.ts\n#EXTINF:1,\n/etc/passwd\n#EXT-X-ENDLIST\n`)
    const concat = path.join(work, "evil.ffconcat")
    fs.writeFileSync(concat, `ffconcat version 1.0\nfile '${hitUrl}/x.mp4'\nfile '/etc/passwd'\n`)
    const out = path.join(work, "out.txt")
    const run = <A, E>(effect: Effect.Effect<A, E, Ffmpeg>) => Effect.runPromise(Effect.either(Effect.provide(effect, app.context)))
    for (const input of [playlist, concat]) {
      const probed = await run(Effect.flatMap(Ffmpeg, (f) => f.probe(input)))
      expect(probed._tag).toBe("Left")
      const rendered = await run(Effect.flatMap(Ffmpeg, (f) =>
        f.run((c) => c.input(fileArg(input)).outputOptions(["-f", "data", "-map", "0"]).output(fileArg(out)))))
      expect(rendered._tag).toBe("Left")
      const written = fs.existsSync(out) ? fs.readFileSync(out, "utf8") : ""
      expect(written).not.toContain("root:")
    }
    // a concat demuxer forced with -safe 0 (the least safe way a command could read such a list)
    const forced = await run(Effect.flatMap(Ffmpeg, (f) =>
      f.run((c) => c.input(fileArg(concat)).inputOptions(["-f", "concat", "-safe", "0"]).outputOptions(["-f", "null"]).output("-"))))
    expect(forced._tag).toBe("Left")
    // a command that names a URL as its input (no fileArg) is refused by the whitelist every run gets,
    // even one that tries to widen it itself
    for (const options of [[], ["-protocol_whitelist", "file,http,tcp"]]) {
      const direct = await run(Effect.flatMap(Ffmpeg, (f) =>
        f.run((c) => c.input(`${hitUrl}/direct.ts`).inputOptions(options).outputOptions(["-f", "null"]).output("-"))))
      expect(direct._tag).toBe("Left")
      if (direct._tag === "Left") expect(String(direct.left)).toMatch(/not on whitelist|Invalid argument|Protocol not found/i)
    }
    expect(restrictInputs(["-f", "lavfi", "-i", "x", "-i", "file:/a", "out"])).toEqual(
      ["-f", "lavfi", "-protocol_whitelist", "file,pipe", "-i", "x", "-protocol_whitelist", "file,pipe", "-i", "file:/a", "out"]
    )
    expect(hits).toEqual([])
  })
})

describe("upload routes' body limit and rate limit", () => {
  let app: InProcessApp
  let work: string
  let token: string
  const VIDEO_LIMIT = 8_000_000

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-upload-big-"))
    // lossless, so well over BODY_LIMIT_BYTES (1 MiB) and under the video limit
    execFileSync(await ffmpegBinary(), ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25", "-t", "4",
      "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", path.join(work, "big.mp4")])
    app = await startApp(testEnv({
      UPLOAD_VIDEO_MAX_BYTES: String(VIDEO_LIMIT),
      UPLOAD_AUDIO_MAX_BYTES: "1000000",
      UPLOAD_IMAGE_MAX_BYTES: "1000000",
      RATE_LIMIT_UPLOAD: "3 per 1 minute",
      RATE_LIMIT_REGISTER: "1000 per 1 minute"
    }))
    const r = await call(app, "POST", "/api/auth/register", { email: freshEmail("uplim"), password: PASSWORD })
    token = r.body["data"].token as string
  }, 60_000)

  afterAll(async () => {
    await app?.close()
    fs.rmSync(work, { recursive: true, force: true })
  })

  it("takes a file larger than BODY_LIMIT_BYTES on an upload route, refuses a declared body over its own limit, and limits the rate", async () => {
    const big = fs.readFileSync(path.join(work, "big.mp4"))
    expect(big.length).toBeGreaterThan(1024 * 1024)
    expect(big.length).toBeLessThan(VIDEO_LIMIT)
    const send = (body: FormData, headers: Record<string, string> = {}) =>
      fetch(app.url("/api/uploads/video"), { method: "POST", headers: { authorization: `Bearer ${token}`, ...headers }, body })
    const form = new FormData()
    form.append("file", new Blob([big], { type: "application/octet-stream" }), "big.mp4")
    const ok = await send(form)
    expect(ok.status).toBe(201)
    expect((await ok.json() as Record<string, any>)["upload"]).toMatchObject({ size: big.length, width: 640, height: 480 })

    // a declared length over the upload routes' limit (the largest kind's plus the form) is refused before anything is read
    const requestLimit = VIDEO_LIMIT + 64 * 1024
    const tooLong = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(app.url("/api/uploads/video"), {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "multipart/form-data; boundary=x", "content-length": String(requestLimit + 1) }
      }, (res) => {
        let body = ""
        res.on("data", (c: Buffer) => (body += c.toString()))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on("error", reject)
      req.end()
    })
    expect(tooLong.status).toBe(413)
    expect(JSON.parse(tooLong.body)).toMatchObject({ code: "PAYLOAD_TOO_LARGE", limitBytes: requestLimit })

    // 3 per minute: the third upload of the minute still passes, the fourth is 429 with Retry-After
    const small = new FormData()
    small.append("file", new Blob([Buffer.from("not a video")]), "x.mp4")
    expect((await send(small)).status).toBe(415)
    expect((await send(small)).status).toBe(415)
    const limited = await send(small)
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).not.toBeNull()
    expect(await limited.json()).toMatchObject({ code: "RATE_LIMITED" })
  })
})
