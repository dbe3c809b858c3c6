import * as path from "node:path"
import { Deferred, Effect, Stream } from "effect"
import type { GenerationApp } from "../../src/services/generations/AppCatalog.js"
import { defineGenerationJob } from "../../src/services/generations/Generations.js"
import { JobPermanent } from "../../src/services/jobs/JobError.js"
import { Ffmpeg, fileArg } from "../../src/services/platform/Ffmpeg.js"
import { Storage } from "../../src/services/platform/Storage.js"
import { makeGenerationHandler } from "../../src/workers/generations/generationHandler.js"

/**
 * A test-only app on the generation flow. Its settings choose what the render does:
 * - `{ mode: "ok" }` stores one small output per unit, reporting progress per unit;
 * - `{ mode: "partial", deliver: n }` stores and delivers n units;
 * - `{ mode: "fail" }` fails permanently (dead-lettered at once, then compensated);
 * - `{ mode: "ffmpeg" }` runs a real ffmpeg encode that lasts until it is killed (its pid in `pids`);
 * - `{ mode: "hold" }` waits until the test releases it (`held`), then delivers like "ok".
 */
export const FixtureJob = defineGenerationJob({ queue: "gen-fixture", timeout: "30 seconds", concurrency: 4 })

export const fixtureApp: GenerationApp = {
  appId: "fixture-render",
  name: "Fixture Render",
  description: "Renders test outputs",
  icon: "film",
  color: "purple",
  order: 2,
  beta: true,
  comingSoon: false,
  job: FixtureJob
}

/** A second app (no generations run for it): only listed, to show the dashboard order. */
export const otherApp: GenerationApp = {
  appId: "zz-another",
  name: "Another App",
  description: "Listed first",
  icon: "video",
  color: "blue",
  order: 1,
  beta: false,
  comingSoon: true,
  job: defineGenerationJob({ queue: "gen-other", timeout: "30 seconds", concurrency: 1 })
}

/** ffmpeg pids by generation id, written when the process starts. */
export const pids = new Map<string, number>()
/** Renders started, by generation id (attempts included). */
export const renders = new Map<string, number>()
/** Holds of "hold" renders, by generation id: the test completes one to let its render finish. */
export const held = new Map<string, Deferred.Deferred<void>>()

const deliver = (id: string, units: number, progress: (percent: number, delivered?: number) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const outputs = []
    for (let unit = 1; unit <= units; unit++) {
      const stored = yield* storage.put(`generations/${id}/${unit}.txt`, Stream.make(new TextEncoder().encode(`unit ${unit} of ${id}\n`)))
      outputs.push({ key: stored.key, size: stored.size })
      yield* progress(Math.round((unit / units) * 100), unit)
    }
    return { outputs, delivered: units }
  })

export const fixtureHandler = makeGenerationHandler({
  app: fixtureApp,
  cancelCheck: "100 millis",
  render: ({ generation, progress }) =>
    Effect.gen(function*() {
      const id = generation.id
      renders.set(id, (renders.get(id) ?? 0) + 1)
      const settings = generation.settings as { readonly mode?: string; readonly deliver?: number }
      switch (settings.mode) {
        case "fail":
          return yield* new JobPermanent({ reason: "the fixture refuses this input" })
        case "partial":
          return yield* deliver(id, settings.deliver ?? 0, progress)
        case "ffmpeg": {
          const ffmpeg = yield* Ffmpeg
          const dir = yield* ffmpeg.tempDir
          yield* progress(5)
          yield* ffmpeg.run(
            (command) =>
              command.input("testsrc=duration=120:size=160x120:rate=25").inputFormat("lavfi").inputOptions("-re")
                .output(fileArg(path.join(dir, "out.mp4"))).videoCodec("libx264").outputOptions("-preset", "ultrafast"),
            { onStart: (pid) => Effect.sync(() => void pids.set(id, pid)) }
          )
          return yield* deliver(id, generation.unitsRequested, progress)
        }
        case "hold": {
          const gate = yield* Deferred.make<void>()
          held.set(id, gate)
          yield* Deferred.await(gate)
          return yield* deliver(id, generation.unitsRequested, progress)
        }
        default:
          return yield* deliver(id, generation.unitsRequested, progress)
      }
    })
})
