import { execFile, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Stream } from "effect"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { FfmpegLive, restrictInputs } from "../../src/layers/platform/FfmpegLive.js"
import { StorageLocalLive } from "../../src/layers/platform/StorageLocalLive.js"
import type { Generation } from "../../src/services/generations/Generations.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { Ffmpeg } from "../../src/services/platform/Ffmpeg.js"
import { Storage } from "../../src/services/platform/Storage.js"
import type { MixClip, MixJobSettings } from "../../src/services/videoMixer/MixSettings.js"
import { planOutput } from "../../src/services/videoMixer/mixPlan.js"
import { buildMixCommand, mixArgv } from "../../src/workers/videoMixer/mixCommand.js"
import { renderMix } from "../../src/workers/videoMixer/videoMixerHandler.js"

/**
 * The Video Mixer part: wall time per output of our worker's render (`renderMix` over the real FfmpegLive
 * and local Storage: clips copied out of storage and probed, each output rendered, probed, tagged and
 * stored) against the bare ffmpeg command lines it runs (the same plans, the same arguments including the
 * -protocol_whitelist FfmpegLive adds, spawned directly on the same clip files), in the same run,
 * alternating bare, ours, ours, bare per round. The overhead is ours over bare (target <= 5%). Peak RSS is
 * this Node process's (the worker's, ffmpeg excluded) after the runs.
 *
 * BENCH_MIX_OUTPUTS (default 3) outputs per render, BENCH_MIX_ROUNDS (default 2) rounds, BENCH_MIX_SECONDS
 * (default 3) seconds per source clip. The mix: 480p 9:16, 30 fps, medium bitrate, audio kept, order mixing
 * and speed variations on, three clips of different sizes, frame rates and sample rates, one silent.
 */

const env = process.env
const outputs = Number(env["BENCH_MIX_OUTPUTS"] ?? "3")
const rounds = Number(env["BENCH_MIX_ROUNDS"] ?? "2")
const seconds = Number(env["BENCH_MIX_SECONDS"] ?? "3")
const exec = promisify(execFile)
const now = () => performance.now()

const sources = [
  { size: "640x360", rate: 25, audio: ["-f", "lavfi", "-i", `sine=frequency=440:duration=${seconds}`, "-c:a", "aac"] },
  { size: "1280x720", rate: 30, audio: ["-an"] },
  { size: "480x480", rate: 15, audio: ["-f", "lavfi", "-i", `sine=frequency=220:duration=${seconds}:sample_rate=22050`, "-c:a", "aac", "-ac", "1"] }
]

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export const run = async (): Promise<void> => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-bench-mixer-"))
  const config = await Effect.runPromise(appConfigFrom({ STORAGE_DIR: path.join(work, "storage"), LOG_LEVEL: "warn" }))
  const layer = Layer.mergeAll(FfmpegLive, StorageLocalLive).pipe(
    Layer.provide(Layer.succeed(AppConfig, config)),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
  const runtime = ManagedRuntime.make(layer)
  try {
    const ffmpeg = await runtime.runPromise(Ffmpeg)
    const ffmpegPath = ffmpeg.info.ffmpegPath!
    const files = await Promise.all(sources.map(async (source, k) => {
      const file = path.join(work, `source_${k}.mp4`)
      await exec(ffmpegPath, [
        "-v", "error", "-f", "lavfi", "-i", `testsrc2=duration=${seconds}:size=${source.size}:rate=${source.rate}`, ...source.audio,
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-shortest", "-y", file
      ])
      return file
    }))
    const clips: Array<MixClip> = await runtime.runPromise(Effect.flatMap(Storage, (storage) =>
      Effect.forEach(files, (file, k) =>
        storage.put(`uploads/bench/clip_${k}.mp4`, Stream.make(new Uint8Array(fs.readFileSync(file)))).pipe(
          Effect.map((stored): MixClip => ({
            videoId: `v${k}`, groupId: null, order: k, storageKey: stored.key, durationSeconds: seconds, width: null, height: null
          }))
        ))))
    const settings: MixJobSettings = {
      enableOrderMixing: true, enableDifferentStart: false, enableGroupMixing: false, groupMixingMode: "sequential",
      enableSpeedVariations: true, speedMin: 0.8, speedMax: 1.25, metadataSource: "capcut", videoBitrate: "medium",
      videoResolution: "480p", frameRate: 30, aspectRatio: "9:16", durationType: "original", smartDistribution: false,
      distributionMode: "equal", audioOption: "keep", clips, groups: []
    }
    const seed = 20261130
    const generation = (): Generation => ({
      id: randomUUID(), userId: randomUUID(), app: "video-mixer", projectId: null, status: "processing", progress: 0,
      unitsRequested: outputs, unitsDelivered: 0, creditCost: 0, charged: 0, refunded: 0, settings, seed, outputs: [],
      errorCode: null, errorMessage: null, createdAt: new Date(), startedAt: new Date(), completedAt: null
    })
    const byVideo = new Map(clips.map((clip, k) => [clip.videoId, files[k]!]))
    const hasAudio = new Map(clips.map((clip, k) => [clip.videoId, sources[k]!.audio[0] !== "-an"]))

    const ours = async () => {
      const start = now()
      const rendered = await runtime.runPromise(Effect.scoped(renderMix({ generation: generation(), progress: () => Effect.void })))
      if (rendered.delivered !== outputs) throw new Error(`rendered ${rendered.delivered} of ${outputs}`)
      return (now() - start) / outputs
    }
    const bare = async () => {
      const start = now()
      for (let i = 0; i < outputs; i++) {
        const plan = planOutput(settings, seed, i)
        const command = buildMixCommand(settings, plan, plan.clips.map((c) => ({
          file: byVideo.get(c.videoId)!, hasAudio: hasAudio.get(c.videoId)!
        })), path.join(work, `bare_${i}.mp4`))
        await new Promise<void>((resolve, reject) => {
          const child = spawn(ffmpegPath, restrictInputs(mixArgv(command)), { stdio: ["ignore", "ignore", "ignore"] })
          child.once("error", reject)
          child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))))
        })
      }
      return (now() - start) / outputs
    }

    // warm-up, discarded: the page cache, the binary, fluent-ffmpeg's one-time capability listing
    await bare()
    await ours()
    const bareTimes: Array<number> = []
    const ourTimes: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      bareTimes.push(await bare())
      ourTimes.push(await ours())
      ourTimes.push(await ours())
      bareTimes.push(await bare())
    }
    const bareMs = median(bareTimes)
    const ourMs = median(ourTimes)
    const rows = [
      ["", "per output (median ms)", "samples (ms)"],
      ["bare ffmpeg", bareMs.toFixed(0), bareTimes.map((t) => t.toFixed(0)).join(" ")],
      ["worker render", ourMs.toFixed(0), ourTimes.map((t) => t.toFixed(0)).join(" ")]
    ]
    console.log(`\nVideo Mixer: ${outputs} outputs of 480p 9:16 30 fps from 3 clips of ${seconds} s, ${rounds} rounds (ffmpeg ${ffmpeg.info.ffmpegVersion})`)
    for (const row of rows) console.log(`${row[0]!.padEnd(14)} ${row[1]!.padStart(22)}   ${row[2]}`)
    console.log(`overhead       ${(((ourMs / bareMs) - 1) * 100).toFixed(1).padStart(21)}%   (target <= 5%)`)
    console.log(`worker peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0).padStart(18)} MiB`)
  } finally {
    await runtime.dispose()
    fs.rmSync(work, { recursive: true, force: true })
  }
}
