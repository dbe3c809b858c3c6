import type { FfmpegCommand } from "fluent-ffmpeg"
import { fileArg } from "../../services/platform/Ffmpeg.js"
import { BITRATE_KBPS, canvasOf, METADATA, type MixJobSettings } from "../../services/videoMixer/MixSettings.js"
import type { MixPlan } from "../../services/videoMixer/mixPlan.js"
import { ENCODER_CARRIER_KEY } from "./encoderTag.js"

/** What the renderer knows of one local input file (from ffprobe). */
export interface MixInput {
  /** A local file the worker named (passed to ffmpeg through `fileArg`). */
  readonly file: string
  readonly hasAudio: boolean
}

/** One ffmpeg invocation, as argument arrays only: the inputs, then the output's options and file. */
export interface MixCommand {
  /** Local files, one per planned clip, read by their position in the graph. */
  readonly inputs: ReadonlyArray<string>
  readonly outputOptions: ReadonlyArray<string>
  readonly output: string
  /** The output's expected duration, for progress. */
  readonly durationSeconds: number
}

/** Every filter and encoder a mix uses: the render asks `Ffmpeg.require` for them before it starts. */
export const MIX_CAPABILITIES = [
  "libx264", "aac", "scale", "pad", "setsar", "fps", "format", "trim", "setpts", "atrim", "asetpts", "aresample",
  "aformat", "atempo", "apad", "anullsrc", "concat"
] as const

/**
 * Encoder threads: one. x264's rate control under a VBV (maxrate/bufsize) is not deterministic with frame or
 * slice threads (measured: three runs, three different files), and the same seed must give the same bytes.
 * A worker renders one output at a time on a small canvas; the filter graph still runs on its own thread.
 */
export const ENCODER_THREADS = 1
const AUDIO_RATE = 48_000

/** Numbers in filter arguments: fixed precision, so a plan always prints the same graph. */
const num = (n: number): string => String(Number(n.toFixed(6)))

/** atempo factors whose product is `speed`, each within [0.5, 2] (the range every ffmpeg's atempo accepts). */
export const atempoChain = (speed: number): Array<number> => {
  const factors: Array<number> = []
  let rest = speed
  while (rest > 2) {
    factors.push(2)
    rest /= 2
  }
  while (rest < 0.5) {
    factors.push(0.5)
    rest /= 0.5
  }
  if (Math.abs(rest - 1) > 1e-9 || factors.length === 0) factors.push(rest)
  return factors
}

/**
 * The ffmpeg command of one output. Each input is normalised on its own before anything else (scaled into the
 * canvas keeping its shape, padded, square pixels, yuv420p; audio resampled to 48 kHz stereo, or a silent track
 * for an input without audio), then trimmed and sped up or slowed down, brought to the frame rate, and the
 * segments are joined by the concat filter (which needs identical formats: hence the normalising).
 */
export const buildMixCommand = (
  settings: MixJobSettings,
  plan: MixPlan,
  inputs: ReadonlyArray<MixInput>,
  output: string
): MixCommand => {
  if (inputs.length !== plan.clips.length) throw new Error("one input per planned clip")
  const { width, height } = canvasOf(settings.videoResolution, settings.aspectRatio)
  const fps = settings.frameRate
  const keepAudio = settings.audioOption === "keep"
  const chains: Array<string> = []
  const joined: Array<string> = []
  plan.clips.forEach((clip, k) => {
    const length = clip.duration / clip.speed
    const speed = Math.abs(clip.speed - 1) > 1e-9 ? [`setpts=PTS/${num(clip.speed)}`] : []
    chains.push([
      `[${k}:v:0]scale=${width}:${height}:force_original_aspect_ratio=decrease`,
      `pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2:color=black`,
      "setsar=1",
      "format=yuv420p",
      `trim=start=${num(clip.start)}:duration=${num(clip.duration)}`,
      "setpts=PTS-STARTPTS",
      ...speed,
      `fps=${fps}`,
      `trim=duration=${num(length)}[v${k}]`
    ].join(","))
    joined.push(`[v${k}]`)
    if (!keepAudio) return
    const source = inputs[k]!.hasAudio
      ? [
        `[${k}:a:0]aresample=${AUDIO_RATE}`,
        `aformat=sample_fmts=fltp:sample_rates=${AUDIO_RATE}:channel_layouts=stereo`,
        `atrim=start=${num(clip.start)}:duration=${num(clip.duration)}`,
        "asetpts=PTS-STARTPTS",
        ...(speed.length > 0 ? atempoChain(clip.speed).map((f) => `atempo=${num(f)}`) : [])
      ]
      : [`anullsrc=channel_layout=stereo:sample_rate=${AUDIO_RATE}`, `aformat=sample_fmts=fltp`]
    // padded, then cut to the video's length: every segment's two streams last exactly as long
    chains.push([...source, "apad", `atrim=duration=${num(length)}`, `asetpts=PTS-STARTPTS[a${k}]`].join(","))
    joined.push(`[a${k}]`)
  })
  const n = plan.clips.length
  chains.push(`${joined.join("")}concat=n=${n}:v=1:a=${keepAudio ? 1 : 0}[outv]${keepAudio ? "[outa]" : ""}`)
  const kbps = BITRATE_KBPS[settings.videoBitrate]
  const metadata = METADATA[settings.metadataSource]
  return {
    inputs: inputs.map((input) => input.file),
    outputOptions: [
      "-filter_complex", chains.join(";"),
      "-map", "[outv]",
      ...(keepAudio ? ["-map", "[outa]", "-c:a", "aac", "-b:a", "128k", "-ar", String(AUDIO_RATE), "-ac", "2"] : ["-an"]),
      "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p",
      // -b:v alone is an average x264 may exceed for long stretches; maxrate/bufsize hold it to the band
      "-b:v", `${kbps}k`, "-maxrate", `${kbps}k`, "-bufsize", `${2 * kbps}k`,
      "-r", String(fps),
      "-threads", String(ENCODER_THREADS),
      // reproducible bytes: no version strings, no input metadata, no timestamps; the encoder name goes in
      // under a carrier key that renameEncoderAtom turns into "encoder" (libavformat overwrites that key)
      "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
      "-map_metadata", "-1", "-map_chapters", "-1",
      "-metadata", `${ENCODER_CARRIER_KEY}=${metadata.encoder}`, "-metadata", `comment=${metadata.comment}`,
      "-movflags", "+faststart", "-max_muxing_queue_size", "1024",
      "-f", "mp4", "-y"
    ],
    output,
    durationSeconds: plan.durationSeconds
  }
}

/** The command as ffmpeg's argument array (what FfmpegLive runs, before it adds -protocol_whitelist to each input). */
export const mixArgv = (command: MixCommand): Array<string> => [
  ...command.inputs.flatMap((file) => ["-i", fileArg(file)]),
  ...command.outputOptions,
  fileArg(command.output)
]

/** Configures a fluent-ffmpeg command with exactly `mixArgv`'s arguments. */
export const applyMixCommand = (mix: MixCommand) => (command: FfmpegCommand): FfmpegCommand => {
  for (const file of mix.inputs) command.input(fileArg(file))
  // variadic form with several arguments: fluent-ffmpeg then never splits one (it splits a lone "a b" in two)
  return command.output(fileArg(mix.output)).outputOptions(...mix.outputOptions)
}
