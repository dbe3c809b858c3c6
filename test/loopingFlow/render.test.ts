import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { FfmpegLive } from "../../src/layers/platform/FfmpegLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import type { Ffmpeg } from "../../src/services/platform/Ffmpeg.js"
import { type LoopInput, renderLoop } from "../../src/workers/loopingFlow/renderLoop.js"
import { testEnv } from "../support/env.js"
import { type Media, media } from "./media.js"

const ORIGINAL_HZ = 250 // 10 cycles per frame at 25 fps: any cut at a frame boundary is in phase, so only a gap or a glitch shows
const LAYER_A_HZ = 1000
const LAYER_B_HZ = 3000

describe("the looping render (real ffmpeg)", () => {
  let m: Media
  let work: string
  let runtime: ManagedRuntime.ManagedRuntime<Ffmpeg, unknown>
  let count = 0

  const render = async (overrides: Partial<LoopInput>) => {
    const dir = fs.mkdtempSync(path.join(work, "job-"))
    const outputPath = path.join(work, `out-${++count}.mp4`)
    const input: LoopInput = {
      sourcePath: path.join(work, "source.mp4"),
      style: "simple",
      crossfadeSeconds: 0.5,
      videoCrossfade: true,
      audioCrossfade: true,
      targetSeconds: 30,
      masterVolume: 100,
      audioFadeIn: 0,
      audioFadeOut: 0,
      muteOriginal: false,
      layers: [],
      dir,
      outputPath,
      ...overrides
    }
    const result = await runtime.runPromise(renderLoop(input))
    return { file: outputPath, result }
  }

  /** Frame md5s of the video, in order. */
  const frameHashes = (file: string) => {
    const raw = m.ffmpeg("-i", file, "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "gray", "-")
    const size = 160 * 120
    const hashes: Array<string> = []
    for (let at = 0; at + size <= raw.length; at += size) hashes.push(createHash("md5").update(raw.subarray(at, at + size)).digest("hex"))
    return hashes
  }

  /** Every property a seamless loop of `target` seconds must have, measured on the file. */
  const expectSeamless = (file: string, target: number, unitSeconds: number) => {
    const info = m.probe(file)
    expect(Math.abs(Number(info.format.duration) - target)).toBeLessThan(0.1)
    const video = info.streams.find((s) => s["codec_type"] === "video")!
    const audio = info.streams.find((s) => s["codec_type"] === "audio")!
    expect(Math.abs(Number(video["duration"]) - target)).toBeLessThan(0.1)
    expect(Number(audio["duration"])).toBeGreaterThan(target - 0.1)

    // frame timestamps: strictly increasing and evenly spaced across every join
    const pts = m.videoPts(file)
    expect(pts.length).toBeGreaterThan(target * 25 - 3)
    const steps = new Set(pts.slice(1).map((p, i) => p - pts[i]!))
    expect([...steps]).toHaveLength(1)
    expect([...steps][0]).toBeGreaterThan(0)

    // no repeated frame at a join (testsrc changes every frame)
    const hashes = frameHashes(file)
    const repeats = hashes.filter((h, i) => i > 0 && h === hashes[i - 1]).length
    expect(repeats).toBe(0)

    // audio: present everywhere (no 10 ms window near silence) and continuous (no jump larger than the sine's own slope)
    const x = m.samples(file)
    expect(x.length / 48_000).toBeGreaterThan(target - 0.1)
    let peak = 0
    for (let i = 2048; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]!))
    const window = 480
    let quietest = Infinity
    for (let at = 2048; at + window <= x.length - 2048; at += window) {
      let sum = 0
      for (let i = at; i < at + window; i++) sum += x[i]! * x[i]!
      quietest = Math.min(quietest, Math.sqrt(sum / window))
    }
    // A sine's RMS is 0.71 of its peak and a gap would be ~0. Debian's ffmpeg 5.1 AAC leaves one 10 ms
    // window at a join at 0.49 of the peak (4.1's stays above 0.5): a dip, no gap; the jump check below
    // bounds any discontinuity.
    expect(quietest).toBeGreaterThan(peak * 0.35)
    const slope = peak * 2 * Math.PI * ORIGINAL_HZ / 48_000
    let jump = 0
    for (let i = 2048; i < x.length - 2048; i++) jump = Math.max(jump, Math.abs(x[i]! - x[i - 1]!))
    expect(jump).toBeLessThan(slope * 2)
    // and joins really happened: more than one unit
    expect(target / unitSeconds).toBeGreaterThan(2)
  }

  beforeAll(async () => {
    m = await media()
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-looping-render-"))
    m.ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", `sine=frequency=${ORIGINAL_HZ}:sample_rate=48000`,
      "-t", "2.56", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path.join(work, "source.mp4"))
    m.ffmpeg("-f", "lavfi", "-i", `sine=frequency=${LAYER_A_HZ}:sample_rate=44100`, "-t", "1.7", path.join(work, "layerA.wav"))
    m.ffmpeg("-f", "lavfi", "-i", `sine=frequency=${LAYER_B_HZ}:sample_rate=48000`, "-t", "2.3", "-c:a", "aac", path.join(work, "layerB.m4a"))
    const config = await Effect.runPromise(appConfigFrom(testEnv()))
    runtime = ManagedRuntime.make(FfmpegLive.pipe(Layer.provide(Layer.succeed(AppConfig, config))))
  })
  afterAll(async () => {
    await runtime?.dispose()
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  })

  for (const style of ["simple", "crossfade", "boomerang"] as const) {
    for (const target of [30, 600]) {
      it(`${style} to ${target} s: duration within 0.1 s, even frame timing, no repeated frame, audio continuous for the whole length`, async () => {
        const { file, result } = await render({ style, targetSeconds: target })
        expect(result.audioEncoded).toBe(false) // no layers, no fades: the audio is the periodic chunk, copied
        if (style === "crossfade") expect(result.unitFrames).toBe(64 - 16) // 0.5 s asked: 16 frames (0.64 s) make the unit 120 AAC frames exactly
        if (style === "boomerang") expect(result.unitFrames).toBe(2 * 64 - 2) // forward, then backwards without repeating either end
        expectSeamless(file, target, result.unitSeconds)
      }, 120_000)
    }
  }

  it("an odd target (not a whole number of units or frames) is cut within 0.1 s", async () => {
    const { file } = await render({ style: "crossfade", targetSeconds: 7.33 })
    expect(Math.abs(Number(m.probe(file).format.duration) - 7.33)).toBeLessThan(0.1)
  }, 60_000)

  it("two audio layers are mixed in, each looped to the full length, and muteOriginal works with and without layers", async () => {
    const layerA = { path: path.join(work, "layerA.wav"), volume: 100, muted: false, fadeIn: 0, fadeOut: 0 }
    const layerB = { path: path.join(work, "layerB.m4a"), volume: 60, muted: false, fadeIn: 0, fadeOut: 0 }
    const plain = (await render({ style: "crossfade", targetSeconds: 30 })).file
    const mixed = await render({ style: "crossfade", targetSeconds: 30, layers: [layerA, layerB] })
    expect(mixed.result.audioEncoded).toBe(true)
    const info = m.probe(mixed.file)
    expect(Math.abs(Number(info.format.duration) - 30)).toBeLessThan(0.1)
    expect(info.streams.find((s) => s["codec_type"] === "video")!["codec_name"]).toBe("h264")

    // the original carries only its own tone; the mix carries all three
    expect(m.bandLevel(plain, ORIGINAL_HZ)).toBeGreaterThan(-30)
    expect(m.bandLevel(plain, LAYER_A_HZ)).toBeLessThan(-60)
    expect(m.bandLevel(plain, LAYER_B_HZ)).toBeLessThan(-60)
    expect(m.bandLevel(mixed.file, ORIGINAL_HZ)).toBeGreaterThan(-30)
    expect(m.bandLevel(mixed.file, LAYER_A_HZ)).toBeGreaterThan(-30)
    expect(m.bandLevel(mixed.file, LAYER_B_HZ)).toBeGreaterThan(-35)
    // layer B at 60 %: about 4.4 dB below layer A (both sines at the same level)
    expect(m.bandLevel(mixed.file, LAYER_A_HZ) - m.bandLevel(mixed.file, LAYER_B_HZ)).toBeGreaterThan(2)

    // the 1.7 s and 2.3 s layers loop to the end: both tones are in the last 3 seconds
    m.ffmpeg("-ss", "27", "-i", mixed.file, "-map", "0:a", "-c:a", "pcm_s16le", path.join(work, "tail.wav"))
    expect(m.bandLevel(path.join(work, "tail.wav"), LAYER_A_HZ)).toBeGreaterThan(-30)
    expect(m.bandLevel(path.join(work, "tail.wav"), LAYER_B_HZ)).toBeGreaterThan(-35)

    // muteOriginal with layers: the original's tone is gone, the layers stay
    const muted = (await render({ style: "crossfade", targetSeconds: 30, layers: [layerA, layerB], muteOriginal: true })).file
    expect(m.bandLevel(muted, ORIGINAL_HZ)).toBeLessThan(-60)
    expect(m.bandLevel(muted, LAYER_A_HZ)).toBeGreaterThan(-30)

    // a muted layer is left out
    const oneMuted = (await render({ style: "simple", targetSeconds: 10, layers: [layerA, { ...layerB, muted: true }] })).file
    expect(m.bandLevel(oneMuted, LAYER_A_HZ)).toBeGreaterThan(-30)
    expect(m.bandLevel(oneMuted, LAYER_B_HZ)).toBeLessThan(-60)

    // muteOriginal without layers: a silent audio track for the whole length
    const silent = await render({ style: "boomerang", targetSeconds: 30, muteOriginal: true })
    const audio = m.probe(silent.file).streams.find((s) => s["codec_type"] === "audio")!
    expect(Number(audio["duration"])).toBeGreaterThan(29.9)
    expect(m.samples(silent.file).every((v) => Math.abs(v) <= 1)).toBe(true)
  }, 180_000)

  it("fades: a layer's fade in and the output's fade out are applied where they belong", async () => {
    const layerA = { path: path.join(work, "layerA.wav"), volume: 100, muted: false, fadeIn: 4, fadeOut: 0 }
    const { file } = await render({ style: "simple", targetSeconds: 20, layers: [layerA], muteOriginal: true, audioFadeOut: 3 })
    const x = m.samples(file)
    const rms = (from: number, to: number) => {
      let sum = 0
      for (let i = Math.floor(from * 48_000); i < Math.floor(to * 48_000); i++) sum += x[i]! * x[i]!
      return Math.sqrt(sum / ((to - from) * 48_000))
    }
    expect(rms(0.2, 0.7)).toBeLessThan(rms(10, 11) * 0.3) // fading in
    expect(rms(19.5, 19.9)).toBeLessThan(rms(10, 11) * 0.3) // fading out at the end
    expect(rms(10, 11)).toBeGreaterThan(1000)
  }, 60_000)
})
