import * as fs from "node:fs/promises"
import * as path from "node:path"
import { type Duration, Effect } from "effect"
import type { FfmpegCommand } from "fluent-ffmpeg"
import { JobPermanent } from "../../services/jobs/JobError.js"
import {
  AAC_FRAME,
  adtsFrames,
  crossfadeFrames,
  type LoopStyle,
  periodicPackets,
  SAMPLE_RATE,
  samplesPerFrame,
  unitFrameRate,
  unitFrames,
  unitsPerAudioPeriod
} from "../../services/loopingFlow/loopPlan.js"
import { Ffmpeg, fileArg } from "../../services/platform/Ffmpeg.js"
import { writeRepeat } from "./mp4Repeat.js"

export interface LoopLayerInput {
  readonly path: string
  /** 0-100 */
  readonly volume: number
  readonly muted: boolean
  readonly fadeIn: number
  readonly fadeOut: number
}

export interface LoopInput {
  readonly sourcePath: string
  readonly style: LoopStyle
  readonly crossfadeSeconds: number
  readonly videoCrossfade: boolean
  readonly audioCrossfade: boolean
  readonly targetSeconds: number
  /** 0-100, on the original audio and every layer */
  readonly masterVolume: number
  /** Seconds of fade at the start and the end of the whole output's audio. */
  readonly audioFadeIn: number
  readonly audioFadeOut: number
  readonly muteOriginal: boolean
  readonly layers: ReadonlyArray<LoopLayerInput>
  /** A private scratch directory (the caller owns and removes it). */
  readonly dir: string
  /** Where the looped mp4 is written. */
  readonly outputPath: string
  readonly progress?: (percent: number) => Effect.Effect<void>
}

export interface LoopResult {
  readonly fps: number
  readonly unitFrames: number
  readonly unitSeconds: number
  /** Whether the whole audio was encoded (layers or fades) instead of repeating one periodic AAC chunk. */
  readonly audioEncoded: boolean
}

const VIDEO_ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-bf", "0", "-pix_fmt", "yuv420p"]
const AUDIO_ENCODE = ["-c:a", "aac", "-b:a", "128k"]
const PCM = ["-c:a", "pcm_s16le", "-ar", String(SAMPLE_RATE), "-ac", "2"]
/** Each step is bounded: the unit steps by the source (at most the upload limit), the final one by the target. */
const STEP_TIMEOUT = "30 minutes"
const FINAL_TIMEOUT = "90 minutes"

/** Filters and encoders this render uses, checked before anything runs (services/platform/Ffmpeg.ts `require`). */
export const LOOP_CAPABILITIES = [
  "libx264", "aac", "fps", "scale", "setsar", "format", "split", "trim", "setpts", "concat", "blend", "reverse",
  "aresample", "aformat", "apad", "atrim", "asetpts", "asplit", "areverse", "amix", "volume", "afade", "anullsrc"
]

const num = (value: number) => Number(value.toFixed(6)).toString()

/**
 * Renders a seamless loop of `input.targetSeconds` from one source: one loop unit (video and PCM audio of
 * exactly equal length) in the chosen style, then repeated up to the target without re-encoding.
 * Without layers or fades, ffmpeg muxes one block (one audio period: the unit and one periodic AAC chunk, see
 * loopPlan.ts) and mp4Repeat.ts writes the output from it: the block's media bytes repeated and its sample
 * tables expanded, so the cost of the target's length is the bytes written. With layers or fades, only the audio
 * is encoded for the full length by ffmpeg, and the video is stream-copied from the looped unit.
 * No `+faststart`: it rewrites the whole file once more (gigabytes for 8 hours) to move the index to the
 * front; the download route serves Range requests, which is what a player needs to read it at the end.
 */
export const renderLoop = (input: LoopInput) =>
  Effect.gen(function*() {
    const ffmpeg = yield* Ffmpeg
    yield* ffmpeg.require(LOOP_CAPABILITIES)
    const report = (percent: number) => input.progress?.(percent) ?? Effect.void
    const file = (name: string) => path.join(input.dir, name)
    const run = (configure: (command: FfmpegCommand) => FfmpegCommand, timeout: Duration.DurationInput = STEP_TIMEOUT) =>
      ffmpeg.run((command) => configure(command).outputOptions("-y"), { timeout })

    const source = yield* ffmpeg.probe(input.sourcePath).pipe(
      Effect.catchTag("FfmpegError", (error) => Effect.fail(new JobPermanent({ reason: "the source video cannot be read", cause: error })))
    )
    const video = source.streams.find((s) => s.codecType === "video")
    if (video === undefined) return yield* new JobPermanent({ reason: "the source has no video stream" })
    const hasAudio = source.streams.some((s) => s.codecType === "audio")
    const fps = unitFrameRate(video.frameRate)
    const spf = samplesPerFrame(fps)

    // 1. The source at the unit's frame rate, size and pixel format, nearly lossless: its frame count is exact.
    yield* run((c) =>
      c.input(fileArg(input.sourcePath)).output(fileArg(file("norm.mp4"))).outputOptions(
        "-map", "0:v:0", "-an", "-vf", `fps=${fps},scale=trunc(iw/2)*2:trunc(ih/2)*2,setsar=1,format=yuv420p`,
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-r", String(fps)
      )
    )
    const norm = yield* ffmpeg.probe(file("norm.mp4"))
    const n = Math.round((norm.streams.find((s) => s.codecType === "video")?.durationSeconds ?? norm.durationSeconds) * fps)
    if (n < 4) return yield* new JobPermanent({ reason: "the source is too short to loop (fewer than 4 frames)" })
    const style: LoopStyle = input.style === "crossfade" && !input.videoCrossfade && !input.audioCrossfade ? "simple" : input.style
    const k = crossfadeFrames(input.crossfadeSeconds, n, fps)
    const frames = unitFrames(style, n, k)
    const unitSamples = frames * spf
    yield* report(15)

    // 2. The original audio as PCM, exactly n frames long, at the master volume (silence when muted or absent).
    const master = num(input.masterVolume / 100)
    const pcmOf = `apad,atrim=end_sample=${n * spf}`
    yield* run((c) =>
      (hasAudio && !input.muteOriginal
        ? c.input(fileArg(input.sourcePath)).outputOptions(
          "-map", "0:a:0", "-af", `aresample=${SAMPLE_RATE},aformat=sample_fmts=s16:channel_layouts=stereo,volume=${master},${pcmOf}`
        )
        : c.input(`anullsrc=r=${SAMPLE_RATE}:cl=stereo`).inputFormat("lavfi").outputOptions("-af", pcmOf))
        .output(fileArg(file("audio.wav"))).outputOptions(...PCM)
    )

    // 3. The video unit.
    const videoGraph = style === "crossfade" && input.videoCrossfade
      ? `[0:v]split[a][b];[a]trim=start_frame=${n - k}:end_frame=${n},setpts=PTS-STARTPTS[tail];` +
        `[b]trim=end_frame=${n - k},setpts=PTS-STARTPTS,split[m1][m2];[m1]trim=end_frame=${k},setpts=PTS-STARTPTS[head];` +
        `[m2]trim=start_frame=${k},setpts=PTS-STARTPTS[rest];` +
        // the head fades in over the tail, so the frame before the unit (the tail's predecessor) leads into it
        `[head][tail]blend=all_expr='A*(N+1)/${k + 1}+B*(1-(N+1)/${k + 1})'[x];[x][rest]concat=n=2:v=1:a=0[v]`
      : style === "boomerang"
      ? `[0:v]split[f][r];[r]reverse,trim=start_frame=1:end_frame=${n - 1},setpts=PTS-STARTPTS[rv];` +
        `[f]setpts=PTS-STARTPTS[fw];[fw][rv]concat=n=2:v=1:a=0[v]`
      : `[0:v]trim=end_frame=${frames},setpts=PTS-STARTPTS[v]`
    yield* run((c) =>
      c.input(fileArg(file("norm.mp4"))).output(fileArg(file("unit.mp4"))).outputOptions(
        "-filter_complex", videoGraph, "-map", "[v]", "-frames:v", String(frames), "-r", String(fps), "-an", ...VIDEO_ENCODE
      )
    )
    yield* report(40)

    // 4. The audio unit, exactly as long as the video unit.
    const exact = `apad,atrim=end_sample=${unitSamples}`
    const audioGraph = style === "crossfade" && input.audioCrossfade
      // acrossfade of ffmpeg 4.1 crashes when its first input is exactly the fade: two afades mixed instead
      ? `[0:a]asplit=3[a][b][c];[a]atrim=start_sample=${(n - k) * spf}:end_sample=${n * spf},asetpts=PTS-STARTPTS,` +
        `afade=t=out:ss=0:ns=${k * spf}[tail];[b]atrim=end_sample=${k * spf},asetpts=PTS-STARTPTS,afade=t=in:ss=0:ns=${k * spf}[head];` +
        `[tail][head]amix=inputs=2:duration=longest:dropout_transition=0,volume=2[x];` +
        `[c]atrim=start_sample=${k * spf}:end_sample=${(n - k) * spf},asetpts=PTS-STARTPTS[rest];[x][rest]concat=n=2:v=0:a=1,${exact}[out]`
      : style === "boomerang"
      ? `[0:a]atrim=end_sample=${(n - 1) * spf},asetpts=PTS-STARTPTS,asplit[f][r];[r]areverse[rv];[f][rv]concat=n=2:v=0:a=1,${exact}[out]`
      : `[0:a]atrim=end_sample=${unitSamples},${exact}[out]`
    yield* run((c) =>
      c.input(fileArg(file("audio.wav"))).output(fileArg(file("unit.wav"))).outputOptions(
        "-filter_complex", audioGraph, "-map", "[out]", ...PCM
      )
    )
    yield* report(50)

    const target = num(input.targetSeconds)
    const layers = input.layers.filter((layer) => !layer.muted && layer.volume > 0)
    const encodeAudio = layers.length > 0 || input.audioFadeIn > 0 || input.audioFadeOut > 0
    const final = (percent: number) => report(60 + percent * 0.4)

    if (!encodeAudio) {
      // 5. One periodic AAC chunk: the second period of a continuous encode of two and a little more (loopPlan.ts);
      // the extra frames keep the encoder's look-ahead in the steady state up to the period's last packet.
      const units = unitsPerAudioPeriod(unitSamples)
      const periodPackets = (units * unitSamples) / AAC_FRAME
      yield* run((c) =>
        c.input(fileArg(file("unit.wav"))).inputOptions("-stream_loop", String(2 * units))
          .output(fileArg(file("encoded.aac"))).outputOptions(
            "-af", `atrim=end_sample=${(2 * periodPackets + 8) * AAC_FRAME}`, ...AUDIO_ENCODE, "-f", "adts"
          )
      )
      const encoded = yield* Effect.promise(() => fs.readFile(file("encoded.aac")))
      const packets = yield* Effect.try({
        try: () => adtsFrames(encoded),
        catch: (cause) => new JobPermanent({ reason: "the encoded audio is not ADTS", cause })
      })
      const { end, start } = periodicPackets(periodPackets)
      if (packets.length < end) return yield* new JobPermanent({ reason: "the audio encode is shorter than two periods" })
      const chunk = packets.slice(start, end).map((p) => encoded.subarray(p.offset, p.offset + p.length))
      yield* Effect.tryPromise({
        try: () => fs.writeFile(file("chunk.aac"), Buffer.concat(chunk)),
        catch: (cause) => new JobPermanent({ reason: "the periodic audio could not be written", cause })
      })
      // 6. One block, exactly one audio period for both tracks: the unit `units` times and the periodic chunk,
      // muxed by stream copy (a few seconds of media whatever the target).
      yield* run((c) =>
        c.input(fileArg(file("unit.mp4"))).inputOptions("-stream_loop", String(units - 1))
          .input(fileArg(file("chunk.aac"))).inputFormat("aac")
          .output(fileArg(file("block.mp4"))).outputOptions("-map", "0:v", "-map", "1:a", "-c", "copy")
      )
      yield* report(60)
      // 7. The block repeated up to the target by mp4Repeat.ts: its media bytes copied in large writes and its
      // sample tables expanded, instead of pushing every packet of the target through ffmpeg's muxer.
      let reported = 0
      yield* writeRepeat(file("block.mp4"), input.outputPath, input.targetSeconds, {
        progress: (fraction) => {
          const percent = Math.floor(fraction * 100)
          if (percent < reported + 5) return Effect.void
          reported = percent
          return final(percent)
        }
      })
    } else {
      // 5'. Layers or fades: the audio is mixed and encoded for the full length; the video is still copied.
      const inputs = [...(input.muteOriginal && layers.length > 0 ? [] : ["[1:a]anull[o0]"])]
      const labels = inputs.length === 0 ? [] : ["[o0]"]
      layers.forEach((layer, i) => {
        const fades = [
          layer.fadeIn > 0 ? `,afade=t=in:st=0:d=${num(layer.fadeIn)}` : "",
          layer.fadeOut > 0 ? `,afade=t=out:st=${num(Math.max(0, input.targetSeconds - layer.fadeOut))}:d=${num(layer.fadeOut)}` : ""
        ].join("")
        inputs.push(
          `[${2 + i}:a]aresample=${SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,` +
            `volume=${num((layer.volume / 100) * (input.masterVolume / 100))}${fades}[l${i}]`
        )
        labels.push(`[l${i}]`)
      })
      // amix (ffmpeg 4.1 has no normalize=0) divides by its input count: scaled back so each keeps its volume.
      const globalFades = [
        input.audioFadeIn > 0 ? `,afade=t=in:st=0:d=${num(input.audioFadeIn)}` : "",
        input.audioFadeOut > 0
          ? `,afade=t=out:st=${num(Math.max(0, input.targetSeconds - input.audioFadeOut))}:d=${num(input.audioFadeOut)}`
          : ""
      ].join("")
      const graph = [
        ...inputs,
        `${labels.join("")}amix=inputs=${labels.length}:duration=first:dropout_transition=0,volume=${labels.length}${globalFades}[mix]`
      ].join(";")
      yield* report(60)
      yield* run((c) => {
        let command = c.input(fileArg(file("unit.mp4"))).inputOptions("-stream_loop", "-1")
          .input(fileArg(file("unit.wav"))).inputOptions("-stream_loop", "-1")
        for (const layer of layers) command = command.input(fileArg(layer.path)).inputOptions("-stream_loop", "-1")
        return command.output(fileArg(input.outputPath)).outputOptions(
          "-filter_complex", graph, "-map", "0:v", "-map", "[mix]", "-c:v", "copy", ...AUDIO_ENCODE, "-t", target
        )
      }, FINAL_TIMEOUT)
    }
    yield* final(100)
    return { fps, unitFrames: frames, unitSeconds: frames / fps, audioEncoded: encodeAudio } satisfies LoopResult
  })
