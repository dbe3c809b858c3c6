import { execFileSync, spawnSync } from "node:child_process"
import { Effect, Option } from "effect"
import { resolveBinary } from "../../src/layers/platform/FfmpegLive.js"
import { ffmpegBinary } from "../support/ffmpegBinary.js"

/** Measurements of rendered media with the ffmpeg/ffprobe the app resolves (never the PATH's). */
export interface Media {
  readonly ffmpeg: (...args: Array<string>) => Buffer
  /** The stderr of a run (filters such as volumedetect and silencedetect report there). */
  readonly ffmpegLog: (...args: Array<string>) => string
  readonly probe: (file: string) => { format: { duration: string }; streams: Array<Record<string, string | number>> }
  /** Packet timestamps of the video stream in its time base, in presentation order. */
  readonly videoPts: (file: string) => Array<number>
  /** The audio decoded as 48 kHz mono s16 samples. */
  readonly samples: (file: string, extra?: Array<string>) => Int16Array
  /** Mean level (dB) of a narrow band around `hz`. */
  readonly bandLevel: (file: string, hz: number) => number
}

export const media = async (): Promise<Media> => {
  const ffmpeg = await ffmpegBinary()
  const ffprobe = (await Effect.runPromise(resolveBinary("ffprobe", "FFPROBE_PATH", Option.fromNullable(process.env["FFPROBE_PATH"])))).path
  const run = (...args: Array<string>) => execFileSync(ffmpeg, ["-v", "error", "-nostdin", "-y", ...args], { maxBuffer: 1 << 30 })
  const logOf = (...args: Array<string>) =>
    spawnSync(ffmpeg, ["-hide_banner", "-nostdin", ...args], { maxBuffer: 1 << 26 }).stderr.toString()
  const probe = (file: string) =>
    JSON.parse(execFileSync(ffprobe, ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file]).toString())
  const videoPts = (file: string) =>
    execFileSync(ffprobe, ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts", "-of", "csv=p=0", file], {
      maxBuffer: 1 << 28
    }).toString().trim().split("\n").map(Number).sort((a, b) => a - b)
  const samples = (file: string, extra: Array<string> = []) => {
    const raw = run("-i", file, ...extra, "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "s16le", "-")
    return new Int16Array(raw.buffer, raw.byteOffset, raw.length / 2)
  }
  const bandLevel = (file: string, hz: number) => {
    const out = logOf("-i", file, "-map", "0:a:0", "-af", `bandpass=f=${hz}:width_type=q:w=8,bandpass=f=${hz}:width_type=q:w=8,volumedetect`, "-f", "null", "-")
    const match = /mean_volume: (-?[\d.]+|-inf) dB/.exec(out)
    return match === null || match[1] === "-inf" ? -200 : Number(match[1])
  }
  return { ffmpeg: run, ffmpegLog: logOf, probe, videoPts, samples, bandLevel }
}
