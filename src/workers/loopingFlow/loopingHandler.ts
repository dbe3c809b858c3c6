import { createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import { Readable } from "node:stream"
import { Effect, Schema, Stream } from "effect"
import { JobPermanent } from "../../services/jobs/JobError.js"
import { loopingFlowApp } from "../../services/loopingFlow/LoopingFlowApp.js"
import { LoopSnapshot } from "../../services/loopingFlow/LoopSettings.js"
import { Ffmpeg } from "../../services/platform/Ffmpeg.js"
import { Storage } from "../../services/platform/Storage.js"
import { makeGenerationHandler } from "../generations/generationHandler.js"
import { renderLoop } from "./renderLoop.js"

/** Copies a stored object to a local file for ffmpeg; a missing one (deleted since the snapshot) fails the job for good. */
const fetchTo = (key: string, file: string, what: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const body = yield* storage.get(key).pipe(
      Effect.catchTags({
        StorageObjectNotFound: () => Effect.fail(new JobPermanent({ reason: `the ${what} was deleted before the loop was rendered` })),
        InvalidStorageKey: (error) => Effect.fail(new JobPermanent({ reason: `the ${what} has an invalid key`, cause: error }))
      })
    )
    yield* Effect.tryPromise({
      try: (signal) => pipeline(Readable.fromWeb(Stream.toReadableStream(body) as never, { signal }), createWriteStream(file)),
      catch: (cause) => cause
    })
  })

/**
 * Looping Flow's job: the snapshot in the generation's settings is rendered into one mp4 (renderLoop.ts) in
 * a scratch directory removed when the render ends or is cancelled, and stored as the generation's output.
 */
export const loopingFlowHandler = makeGenerationHandler({
  app: loopingFlowApp,
  render: ({ generation, progress }) =>
    Effect.gen(function*() {
      const settings = yield* Schema.decodeUnknown(LoopSnapshot)(generation.settings).pipe(
        Effect.mapError((cause) => new JobPermanent({ reason: "the generation's settings are not a loop snapshot", cause }))
      )
      const ffmpeg = yield* Ffmpeg
      const storage = yield* Storage
      const dir = yield* ffmpeg.tempDir
      const sourcePath = path.join(dir, "source")
      yield* fetchTo(settings.sourceKey, sourcePath, "source video")
      const layers = yield* Effect.forEach(settings.audioLayers, (layer) =>
        Effect.gen(function*() {
          const file = path.join(dir, `layer-${layer.layerIndex}`)
          yield* fetchTo(layer.storageKey, file, `audio layer ${layer.layerIndex}`)
          return { path: file, volume: layer.volume, muted: layer.muted, fadeIn: layer.fadeIn, fadeOut: layer.fadeOut }
        }))
      yield* progress(5)
      // named for the generation, so an operator (and the cancel test) can tell its ffmpeg processes
      const outputPath = path.join(dir, `looped-video-${generation.id}.mp4`)
      yield* renderLoop({
        sourcePath,
        style: settings.loopStyle,
        crossfadeSeconds: settings.crossfadeDuration,
        videoCrossfade: settings.videoCrossfade,
        audioCrossfade: settings.audioCrossfade,
        targetSeconds: settings.targetDuration,
        masterVolume: settings.masterVolume,
        audioFadeIn: settings.audioFadeIn,
        audioFadeOut: settings.audioFadeOut,
        muteOriginal: settings.muteOriginal,
        layers,
        dir,
        outputPath,
        progress: (percent) => progress(5 + percent * 0.9)
      })
      const stored = yield* storage.put(
        `generations/${generation.id}/looped-video-${generation.id}.mp4`,
        Stream.fromAsyncIterable((async function*() {
          const handle = await fs.open(outputPath)
          try {
            // 8 MiB reads: an 8-hour output is 1.7 GB, and at the default 64 KiB its 27,000 chunks took 7 s to store
            for await (const chunk of handle.createReadStream({ highWaterMark: 8 << 20 })) yield chunk as Uint8Array
          } finally {
            await handle.close()
          }
        })(), (cause) => cause),
        { contentType: "video/mp4" }
      )
      yield* progress(99)
      return { outputs: [{ key: stored.key, size: stored.size }], delivered: 1 }
    })
})
