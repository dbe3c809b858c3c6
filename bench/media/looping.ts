import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { FfmpegLive, resolveBinary } from "../../src/layers/platform/FfmpegLive.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { renderLoop } from "../../src/workers/loopingFlow/renderLoop.js"

/**
 * The looping part of `npm run bench:media` (alone: `BENCH_MEDIA_PARTS=looping npm run bench:media`). From one lavfi
 * source of LOOP_BENCH_SOURCE seconds (10) at LOOP_BENCH_SIZE (320x180) and 30 fps, it times:
 * - a crossfade loop to 1 hour through the app's renderer (one unit and one block rendered by ffmpeg, then the
 *   block repeated by mp4Repeat.ts in this process);
 * - one full re-encode of the same 1-hour output with the ffmpeg CLI, in the same run (the old backend's
 *   way: every frame encoded), at the same x264 preset and quality as the unit (veryfast, crf 20);
 * - the same loop to 8 hours (the target: within 2x of the 1-hour loop), twice in a row.
 * For each: wall time, peak RSS of its ffmpeg processes (sampled from /proc every 50 ms) and of this process (which
 * writes the repeated file), and output size.
 * LOOP_BENCH_SKIP_REENCODE=1 leaves the re-encode out (it takes minutes on a small machine).
 */

const env = process.env
const sourceSeconds = Number(env["LOOP_BENCH_SOURCE"] ?? 10)
const size = env["LOOP_BENCH_SIZE"] ?? "320x180"

/**
 * Peak VmHWM (kB) of processes whose command line names `needle`, sampled until `stop` is called, and the peak RSS
 * of this process over the same time (the loop's last step, mp4Repeat.ts, runs here, not in ffmpeg).
 */
const peakRss = (needle: string) => {
  let peak = 0
  let own = process.memoryUsage.rss()
  const sample = () => {
    own = Math.max(own, process.memoryUsage.rss())
    for (const pid of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue
      try {
        if (!fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle)) continue
        const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
        if (hwm !== null) peak = Math.max(peak, Number(hwm[1]))
      } catch {
        // the process ended between the listing and the read
      }
    }
  }
  const timer = setInterval(sample, 50)
  return () => {
    clearInterval(timer)
    sample()
    return { ffmpeg: peak * 1024, node: own }
  }
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

export const run = async (): Promise<void> => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-bench-looping-"))
  try {
    const config = await Effect.runPromise(appConfigFrom({ NODE_ENV: "development", LOG_LEVEL: "error" }))
    const ffmpeg = (await Effect.runPromise(resolveBinary("ffmpeg", "FFMPEG_PATH", Option.fromNullable(env["FFMPEG_PATH"])))).path
    const source = path.join(work, "source.mp4")
    execFileSync(ffmpeg, [
      "-v", "error", "-y", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=30`, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
      "-t", String(sourceSeconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", source
    ])
    const runtime = ManagedRuntime.make(FfmpegLive.pipe(Layer.provide(Layer.succeed(AppConfig, config))))
    const rows: Array<{ what: string; seconds: number; rss: { ffmpeg: number; node: number }; bytes: number }> = []
    const loop = async (hours: number, note = "") => {
      const dir = fs.mkdtempSync(path.join(work, `loop-${hours}h-`))
      const outputPath = path.join(work, `loop-${hours}h.mp4`)
      const stop = peakRss(dir)
      const start = performance.now()
      await runtime.runPromise(renderLoop({
        sourcePath: source, style: "crossfade", crossfadeSeconds: 1, videoCrossfade: true, audioCrossfade: true, targetSeconds: hours * 3600,
        masterVolume: 100, audioFadeIn: 0, audioFadeOut: 0, muteOriginal: false, layers: [], dir, outputPath
      }))
      const seconds = (performance.now() - start) / 1000
      rows.push({ what: `loop to ${hours} h (renderLoop)${note === "" ? "" : `, ${note}`}`, seconds, rss: stop(), bytes: fs.statSync(outputPath).size })
      fs.rmSync(outputPath)
      fs.rmSync(dir, { recursive: true, force: true })
      return seconds
    }
    const oneHour = await loop(1)
    let reencode: number | undefined
    if (env["LOOP_BENCH_SKIP_REENCODE"] !== "1") {
      const outputPath = path.join(work, "reencode-1h.mp4")
      const stop = peakRss(outputPath)
      const start = performance.now()
      await new Promise<void>((resolve, reject) => {
        const child = spawn(ffmpeg, [
          "-v", "error", "-y", "-stream_loop", "-1", "-i", source, "-t", "3600", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
          "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", outputPath
        ], { stdio: "inherit" })
        child.on("error", reject)
        child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))))
      })
      reencode = (performance.now() - start) / 1000
      rows.push({ what: "full re-encode to 1 h (ffmpeg CLI)", seconds: reencode, rss: stop(), bytes: fs.statSync(outputPath).size })
      fs.rmSync(outputPath)
    }
    // Twice: on this VM the first write of a new 1.7 GB file runs at about half the speed of the next
    // (pages the guest has not used lately, and ext4 allocating the file's blocks); both are reported.
    const eightHours = await loop(8)
    const eightHoursAgain = await loop(8, "again")
    await runtime.dispose()

    console.log(`\nLooping Flow, source ${sourceSeconds} s ${size} 30 fps, crossfade 1 s, ffmpeg ${ffmpeg}`)
    console.log("| run | wall s | peak ffmpeg RSS | peak bench-process RSS | output |")
    console.log("|---|---:|---:|---:|---:|")
    for (const row of rows) {
      console.log(`| ${row.what} | ${row.seconds.toFixed(1)} | ${mb(row.rss.ffmpeg)} | ${mb(row.rss.node)} | ${mb(row.bytes)} |`)
    }
    if (reencode !== undefined) console.log(`loop vs re-encode (1 h): ${(reencode / oneHour).toFixed(1)}x faster (target >= 20x)`)
    console.log(`8 h vs 1 h loop: ${(eightHours / oneHour).toFixed(2)}x the time, ${(eightHoursAgain / oneHour).toFixed(2)}x again (target <= 2x)`)
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  run().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
