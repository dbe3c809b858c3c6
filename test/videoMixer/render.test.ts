import { createHash, randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Chunk, Effect, Layer, ManagedRuntime, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { FfmpegLive } from "../../src/layers/platform/FfmpegLive.js"
import { StorageMemory } from "../../src/layers/platform/StorageMemory.js"
import type { Generation } from "../../src/services/generations/Generations.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { Storage } from "../../src/services/platform/Storage.js"
import type { MixJobSettings } from "../../src/services/videoMixer/MixSettings.js"
import { planOutput } from "../../src/services/videoMixer/mixPlan.js"
import { renderMix } from "../../src/workers/videoMixer/videoMixerHandler.js"
import { baseSettings, clipsOf, FIXTURES, makeFixtures, type Probed, probeFile } from "./media.js"

const Services = Layer.merge(
  FfmpegLive.pipe(Layer.provide(Layer.effect(AppConfig, appConfigFrom({})))),
  StorageMemory
)

describe("Video Mixer rendering (real ffmpeg)", () => {
  let runtime: ManagedRuntime.ManagedRuntime<Layer.Layer.Success<typeof Services>, unknown>
  let work: string
  let base: MixJobSettings

  const generation = (settings: MixJobSettings, seed: number, units: number): Generation => ({
    id: randomUUID(), userId: randomUUID(), app: "video-mixer", projectId: null, status: "processing", progress: 0,
    unitsRequested: units, unitsDelivered: 0, creditCost: 0, charged: 0, refunded: 0, settings, seed, outputs: [],
    errorCode: null, errorMessage: null, createdAt: new Date(), startedAt: new Date(), completedAt: null
  })

  /** Renders `units` outputs; returns each output's bytes and probe, and the progress reported. */
  const render = async (settings: MixJobSettings, seed = 1, units = 1) => {
    const progress: Array<[number, number | undefined]> = []
    const rendered = await runtime.runPromise(Effect.scoped(renderMix({
      generation: generation(settings, seed, units),
      progress: (percent, delivered) => Effect.sync(() => void progress.push([percent, delivered]))
    })))
    const files = await Promise.all(rendered.outputs.map(async (output, i) => {
      const bytes = await runtime.runPromise(Effect.flatMap(Storage, (s) => s.get(output.key)).pipe(
        Effect.flatMap(Stream.runCollect),
        Effect.map((chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))
      ))
      const file = path.join(work, `${randomUUID()}_${i}.mp4`)
      fs.writeFileSync(file, bytes)
      return { bytes, probe: await probeFile(file), output }
    }))
    return { rendered, files, progress }
  }
  const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex")
  const natural = FIXTURES.reduce((sum, f) => sum + f.durationSeconds, 0)

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-vm-render-"))
    runtime = ManagedRuntime.make(Services)
    const files = await makeFixtures(work)
    const keys = await runtime.runPromise(Effect.flatMap(Storage, (storage) =>
      Effect.forEach(files, (file, k) =>
        Effect.map(storage.put(`uploads/u/clip_${k}.mp4`, Stream.make(new Uint8Array(fs.readFileSync(file)))), (s) => s.key))))
    base = baseSettings(clipsOf(keys))
  }, 60_000)
  afterAll(async () => {
    await runtime?.dispose()
    fs.rmSync(work, { recursive: true, force: true })
  })

  let reference: { bytes: Buffer; probe: Probed }

  it("mixes clips of different sizes, frame rates and sample rates, one without audio, onto the charged canvas", async () => {
    const { rendered, files, progress } = await render(base, 7)
    expect(rendered.delivered).toBe(1)
    const [{ probe, bytes, output }] = files as [typeof files[0]]
    reference = { bytes, probe }
    expect(probe).toMatchObject({ width: 480, height: 854, fps: 30, audio: { sampleRate: 48000, channels: 2 } })
    expect(probe.durationSeconds).toBeGreaterThan(natural - 0.15)
    expect(probe.durationSeconds).toBeLessThan(natural + 0.15)
    expect(probe.tags).toMatchObject({ encoder: "CapCut", comment: "Made with CapCut" })
    expect(output).toMatchObject({ key: expect.stringMatching(/^generations\/[0-9a-f-]+\/output_1\.mp4$/), size: bytes.length, width: 480, height: 854 })
    expect(progress.at(-1)).toEqual([100, 1])
    expect(progress.map(([p]) => p)).toEqual([...progress.map(([p]) => p)].sort((a, b) => a - b))
  }, 60_000)

  it("reproduces the same bytes from the same seed; order mixing with another seed changes the order and the bytes", async () => {
    const again = await render(base, 7)
    expect(sha(again.files[0]!.bytes)).toBe(sha(reference.bytes))
    const mixed = { ...base, enableOrderMixing: true }
    const seeds = [1, 2, 3, 4, 5].filter((seed) =>
      planOutput(mixed, seed, 0).clips.map((c) => c.videoId).join() !== planOutput(mixed, 1, 0).clips.map((c) => c.videoId).join())
    expect(seeds.length).toBeGreaterThan(0)
    const [one, other] = await Promise.all([render(mixed, 1), render(mixed, seeds[0]!)])
    expect(sha(one.files[0]!.bytes)).not.toBe(sha(other.files[0]!.bytes))
    const oneAgain = await render(mixed, 1)
    expect(sha(oneAgain.files[0]!.bytes)).toBe(sha(one.files[0]!.bytes))
  }, 120_000)

  it("resolution, aspect, frame rate, audio, bitrate and metadata each change the output as charged", async () => {
    const wide = await render({ ...base, videoResolution: "720p", aspectRatio: "16:9", frameRate: 24, audioOption: "mute", metadataSource: "tiktok" })
    expect(wide.files[0]!.probe).toMatchObject({ width: 1280, height: 720, fps: 24, audio: undefined })
    expect(wide.files[0]!.probe.tags).toMatchObject({ encoder: "TikTok", comment: "TikTok Video" })
    const square = await render({ ...base, aspectRatio: "4:5", frameRate: 60, metadataSource: "youtube" })
    expect(square.files[0]!.probe).toMatchObject({ width: 480, height: 600, fps: 60 })
    expect(square.files[0]!.probe.tags).toMatchObject({ encoder: "YouTube", comment: "YouTube Video" })
    // the bitrate band: only videoBitrate differs from the reference (low, 1000 kbps)
    const high = await render({ ...base, videoBitrate: "high" })
    expect(reference.probe.videoKbps).toBeLessThan(1000 * 1.25)
    expect(high.files[0]!.probe.videoKbps).toBeGreaterThan(reference.probe.videoKbps * 2)
    expect(high.files[0]!.probe.videoKbps).toBeLessThan(5000 * 1.25)
  }, 180_000)

  it("fixed duration and speed variations change the length", async () => {
    for (const distributionMode of ["equal", "proportional", "weighted"] as const) {
      const fixed = await render({ ...base, durationType: "fixed", fixedDuration: 2, smartDistribution: true, distributionMode })
      expect(fixed.files[0]!.probe.durationSeconds).toBeGreaterThan(1.85)
      expect(fixed.files[0]!.probe.durationSeconds).toBeLessThan(2.15)
    }
    const sped = await render({ ...base, durationType: "fixed", fixedDuration: 3 })
    expect(sped.files[0]!.probe.durationSeconds).toBeGreaterThan(2.85)
    expect(sped.files[0]!.probe.durationSeconds).toBeLessThan(3.15)
    const fast = await render({ ...base, enableSpeedVariations: true, speedMin: 2, speedMax: 2 })
    expect(fast.files[0]!.probe.durationSeconds).toBeGreaterThan(natural / 2 - 0.15)
    expect(fast.files[0]!.probe.durationSeconds).toBeLessThan(natural / 2 + 0.15)
    expect(fast.files[0]!.probe.audio).toEqual({ sampleRate: 48000, channels: 2 })
  }, 180_000)

  it("renders several outputs, each its own plan and file", async () => {
    const { rendered, files, progress } = await render({ ...base, enableDifferentStart: true, audioOption: "mute" }, 3, 2)
    expect(rendered.delivered).toBe(2)
    expect(rendered.outputs.map((o) => o.key.split("/").at(-1))).toEqual(["output_1.mp4", "output_2.mp4"])
    expect(sha(files[0]!.bytes)).not.toBe(sha(files[1]!.bytes))
    expect(progress.filter(([, delivered]) => delivered !== undefined).map(([p, d]) => [Math.round(p), d])).toContainEqual([50, 1])
    expect(progress.at(-1)).toEqual([100, 2])
  }, 120_000)
})
