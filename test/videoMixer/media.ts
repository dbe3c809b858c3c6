import { execFile } from "node:child_process"
import * as path from "node:path"
import { promisify } from "node:util"
import { Effect, Option } from "effect"
import { resolveBinary } from "../../src/layers/platform/FfmpegLive.js"
import type { MixClip, MixJobSettings } from "../../src/services/videoMixer/MixSettings.js"
import { ffmpegBinary } from "../support/ffmpegBinary.js"
import { mixSettings } from "./settings.js"

const run = promisify(execFile)

/** The ffprobe the app resolves (never the PATH's on a machine without one). */
export const ffprobeBinary = (): Promise<string> =>
  Effect.runPromise(resolveBinary("ffprobe", "FFPROBE_PATH", Option.fromNullable(process.env["FFPROBE_PATH"]))).then((found) => found.path)

/**
 * Three small clips that differ in everything the mixer normalises: size, frame rate, audio rate and
 * channels, and one without audio (with noise, so the encoder needs every bit a bitrate band allows).
 */
export const FIXTURES = [
  {
    name: "a.mp4", durationSeconds: 1.5, width: 160, height: 120,
    args: ["-f", "lavfi", "-i", "testsrc=duration=1.5:size=160x120:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:duration=1.5",
      "-c:a", "aac", "-shortest"]
  },
  {
    name: "b.mp4", durationSeconds: 2, width: 320, height: 180,
    args: ["-f", "lavfi", "-i", "testsrc2=duration=2:size=320x180:rate=30", "-vf", "noise=alls=80:allf=t+u", "-an"]
  },
  {
    name: "c.mp4", durationSeconds: 1, width: 240, height: 240,
    args: ["-f", "lavfi", "-i", "testsrc=duration=1:size=240x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=220:duration=1:sample_rate=22050",
      "-c:a", "aac", "-ac", "1", "-shortest"]
  }
] as const

export const makeFixtures = async (dir: string): Promise<Array<string>> => {
  const ffmpeg = await ffmpegBinary()
  return Promise.all(FIXTURES.map(async (f) => {
    const file = path.join(dir, f.name)
    await run(ffmpeg, ["-v", "error", ...f.args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-y", file])
    return file
  }))
}

export interface Probed {
  readonly width: number
  readonly height: number
  readonly fps: number
  readonly durationSeconds: number
  readonly videoKbps: number
  readonly audio: { readonly sampleRate: number; readonly channels: number } | undefined
  readonly tags: Record<string, string>
}

export const probeFile = async (file: string): Promise<Probed> => {
  const { stdout } = await run(await ffprobeBinary(), [
    "-v", "error", "-show_entries", "format=duration:format_tags:stream=codec_type,width,height,avg_frame_rate,bit_rate,sample_rate,channels",
    "-of", "json", file
  ])
  const json = JSON.parse(stdout) as {
    streams: Array<Record<string, string | number>>
    format: { duration: string; tags?: Record<string, string> }
  }
  const video = json.streams.find((s) => s["codec_type"] === "video")!
  const audio = json.streams.find((s) => s["codec_type"] === "audio")
  const [num, den] = String(video["avg_frame_rate"]).split("/").map(Number) as [number, number]
  return {
    width: Number(video["width"]),
    height: Number(video["height"]),
    fps: num / den,
    durationSeconds: Number(json.format.duration),
    videoKbps: Number(video["bit_rate"]) / 1000,
    audio: audio === undefined ? undefined : { sampleRate: Number(audio["sample_rate"]), channels: Number(audio["channels"]) },
    tags: json.format.tags ?? {}
  }
}

export const clipsOf = (keys: ReadonlyArray<string>): Array<MixClip> =>
  FIXTURES.map((f, k) => ({
    videoId: `video-${f.name[0]}`, groupId: null, order: k, storageKey: keys[k]!, durationSeconds: f.durationSeconds, width: f.width, height: f.height
  }))

export const baseSettings = (clips: ReadonlyArray<MixClip>): MixJobSettings => ({ ...mixSettings(), clips, groups: [] })
