import { createReadStream, createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { NodeSink, NodeStream } from "@effect/platform-node"
import { Effect, Exit, Schema, Stream } from "effect"
import type { GenerationOutput } from "../../services/generations/Generations.js"
import { JobPermanent } from "../../services/jobs/JobError.js"
import { Ffmpeg, FfmpegError, type ProbeResult } from "../../services/platform/Ffmpeg.js"
import { Storage, StorageError } from "../../services/platform/Storage.js"
import { MixJobSettings } from "../../services/videoMixer/MixSettings.js"
import { type MixPlan, planOutput } from "../../services/videoMixer/mixPlan.js"
import { videoMixerApp } from "../../services/videoMixer/VideoMixerApp.js"
import { makeGenerationHandler, type RenderContext } from "../generations/generationHandler.js"
import { renameEncoderAtom } from "./encoderTag.js"
import { applyMixCommand, buildMixCommand, MIX_CAPABILITIES } from "./mixCommand.js"

/** The Storage key of output `index` (0-based) of a generation. */
export const outputKey = (generationId: string, index: number) => `generations/${generationId}/output_${index + 1}.mp4`

/** A source clip copied into the render's temp dir: its probe, or why it cannot be used. */
type LocalClip =
  | { readonly _tag: "Ready"; readonly file: string; readonly probe: ProbeResult }
  | { readonly _tag: "Unusable"; readonly reason: string }

const localError = (op: "get" | "put", key: string) => (cause: unknown) =>
  new StorageError({ op, key, reason: "local temp file", cause })

/**
 * Copies a clip from Storage to `file` (a name the worker chose: the key never reaches a path or an argument)
 * and probes it. A clip that is gone, has an invalid key, or is not readable media is unusable: the outputs
 * that need it are skipped. A storage outage or a probe timeout fails the render, to be retried.
 */
const fetchClip = (key: string, file: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const ffmpeg = yield* Ffmpeg
    const body = yield* storage.get(key)
    yield* Stream.run(body, NodeSink.fromWritable(() => createWriteStream(file, { flags: "wx" }), localError("get", key)))
    const probe = yield* ffmpeg.probe(file)
    if (!probe.streams.some((s) => s.codecType === "video")) {
      return { _tag: "Unusable", reason: "the clip has no video stream" } satisfies LocalClip as LocalClip
    }
    return { _tag: "Ready", file, probe } satisfies LocalClip as LocalClip
  }).pipe(
    Effect.catchTags({
      StorageObjectNotFound: () => Effect.succeed<LocalClip>({ _tag: "Unusable", reason: "the clip is no longer stored" }),
      InvalidStorageKey: (e) => Effect.succeed<LocalClip>({ _tag: "Unusable", reason: e.message }),
      FfmpegError: (e) =>
        e.reason === "probe"
          ? Effect.succeed<LocalClip>({ _tag: "Unusable", reason: "the clip is not readable media" })
          : Effect.fail(e)
    })
  )

/** An ffmpeg exit code (not a signal) says the inputs were bad: that output is lost, the others go on. */
const isBadMedia = (error: unknown): error is FfmpegError =>
  error instanceof FfmpegError && error.reason === "exit" && error.signal === undefined

/**
 * Renders a Video Mixer generation: every output in turn (plan, one ffmpeg run, stored at `outputKey`).
 * An output whose clip is unusable or whose ffmpeg exits with an error is skipped and the generation ends
 * partial (Generations refunds the rest); no output at all fails it for good. Timeouts, signals and storage
 * errors fail the render and the job's retry policy decides (a retry renders everything again, to the same
 * keys and the same bytes). A render that is interrupted (a cancel) or fails deletes the outputs it stored.
 */
export const renderMix = Effect.fn("VideoMixer.render")(function*({ generation, progress }: RenderContext) {
  const settings = yield* Schema.decodeUnknown(MixJobSettings)(generation.settings).pipe(
    Effect.mapError((cause) => new JobPermanent({ reason: "the generation's settings are not Video Mixer settings", cause }))
  )
  const ffmpeg = yield* Ffmpeg
  const storage = yield* Storage
  yield* ffmpeg.require(MIX_CAPABILITIES)
  const dir = yield* ffmpeg.tempDir
  const seed = generation.seed ?? 0
  const total = generation.unitsRequested
  const plans: Array<MixPlan> = Array.from({ length: total }, (_, i) => planOutput(settings, seed, i))

  const clips = new Map<string, LocalClip>()
  const clipOf = (key: string) =>
    Effect.suspend(() => {
      const known = clips.get(key)
      if (known !== undefined) return Effect.succeed(known)
      return Effect.tap(fetchClip(key, path.join(dir, `clip_${clips.size + 1}`)), (clip) => Effect.sync(() => clips.set(key, clip)))
    })

  const outputs: Array<GenerationOutput> = []
  // A render that is stopped (a cancel) or fails leaves no stored output behind: a retry renders them again.
  yield* Effect.addFinalizer((exit) =>
    Exit.isSuccess(exit)
      ? Effect.void
      : Effect.forEach(outputs, (output) => Effect.ignore(storage.delete(output.key)), { discard: true })
  )
  for (const plan of plans) {
    const local: Array<LocalClip> = []
    for (const clip of plan.clips) local.push(yield* clipOf(clip.storageKey))
    const unusable = local.find((c) => c._tag === "Unusable")
    if (plan.clips.length === 0 || unusable !== undefined) {
      yield* Effect.logWarning("video mixer output skipped", {
        generationId: generation.id,
        output: plan.index + 1,
        reason: unusable?._tag === "Unusable" ? unusable.reason : "no clips"
      })
      continue
    }
    const file = path.join(dir, `output_${plan.index + 1}.mp4`)
    const command = buildMixCommand(
      settings,
      plan,
      local.map((c) => {
        const ready = c as Extract<LocalClip, { _tag: "Ready" }>
        return { file: ready.file, hasAudio: ready.probe.streams.some((s) => s.codecType === "audio") }
      }),
      file
    )
    const done = outputs.length
    const rendered = yield* ffmpeg.run(applyMixCommand(command), {
      durationSeconds: command.durationSeconds,
      onProgress: (p) =>
        p.percent === undefined ? Effect.void : progress(((plan.index + Math.min(100, p.percent) / 100) / total) * 100, done)
    }).pipe(
      Effect.as(true),
      Effect.catchIf(isBadMedia, (error) =>
        Effect.logWarning("video mixer output failed; skipped", {
          generationId: generation.id,
          output: plan.index + 1,
          error: error.message
        }).pipe(Effect.as(false)))
    )
    if (!rendered) continue
    yield* Effect.tryPromise({ try: () => renameEncoderAtom(file), catch: localError("put", outputKey(generation.id, plan.index)) })
    const probe = yield* ffmpeg.probe(file)
    const video = probe.streams.find((s) => s.codecType === "video")
    const key = outputKey(generation.id, plan.index)
    const stored = yield* storage.put(
      key,
      NodeStream.fromReadable<StorageError, Uint8Array>(() => createReadStream(file), localError("put", key)),
      { contentType: "video/mp4" }
    )
    yield* Effect.promise(() => fs.rm(file, { force: true }))
    outputs.push({
      key: stored.key,
      size: stored.size,
      durationSeconds: probe.durationSeconds,
      width: video?.width ?? null,
      height: video?.height ?? null
    })
    yield* progress(((plan.index + 1) / total) * 100, outputs.length)
  }
  if (outputs.length === 0) {
    return yield* new JobPermanent({ reason: "no output of the mix could be rendered from its clips" })
  }
  return { outputs, delivered: outputs.length }
})

/** The job handler of Video Mixer generations (queue video-mixer). */
export const videoMixerHandler = makeGenerationHandler({ app: videoMixerApp, render: renderMix })
