import { Duration, Effect, Option, Schedule, type Scope } from "effect"
import type { GenerationApp, GenerationJobPayload } from "../../services/generations/AppCatalog.js"
import { type Generation, type GenerationOutput, Generations } from "../../services/generations/Generations.js"
import type { JobClass } from "../../services/jobs/JobError.js"
import { Storage } from "../../services/platform/Storage.js"
import type { FinalFailure, JobHandler, WorkerServices } from "../jobs/runtime.js"

export interface RenderContext {
  readonly generation: Generation
  /**
   * Reports progress (0-100, never backwards) and, optionally, how many units are done: on the
   * generation row and on the user's progress channel. Never fails.
   */
  readonly progress: (percent: number, delivered?: number) => Effect.Effect<void>
}

export interface Rendered {
  /** Stored outputs (Storage keys): the user's once the generation completes, deleted if it was cancelled meanwhile. */
  readonly outputs: ReadonlyArray<GenerationOutput>
  /** Units delivered: fewer than requested makes it partial, and the rest is refunded. */
  readonly delivered: number
}

/** How an app renders its generations; `makeGenerationHandler` turns it into the app's job handler. */
export interface GenerationRenderer {
  readonly app: GenerationApp
  /**
   * The work, in a scope closed when it ends or is stopped (a cancel interrupts it: an ffmpeg child
   * run inside is killed). Failures are classified and retried like any job's (see classify.ts).
   */
  readonly render: (context: RenderContext) => Effect.Effect<Rendered, unknown, WorkerServices | Scope.Scope>
  /** How often a running render checks whether it was cancelled; 500 ms by default. */
  readonly cancelCheck?: Duration.DurationInput
  /**
   * What the user is told when the job fails for good, when the app knows better than `failureFor`
   * (a provider's refusal written for users, say); undefined keeps the generic text.
   */
  readonly describeFailure?: (failure: FinalFailure) => { readonly code: string; readonly message: string } | undefined
}

/** What the user is told when a generation fails for good (the technical reason is in the logs and the dead letter). */
export const failureFor = (jobClass: JobClass) =>
  jobClass === "timeout"
    ? { code: "GENERATION_TIMEOUT", message: "The generation took too long and was stopped. Your credits were refunded." }
    : { code: "GENERATION_FAILED", message: "The generation could not be completed. Your credits were refunded." }

const failGeneration = (id: string, failure: FinalFailure, describe: GenerationRenderer["describeFailure"]) =>
  Effect.flatMap(Generations, (generations) => {
    const { code, message } = describe?.(failure) ?? failureFor(failure.jobClass)
    return generations.fail(id, code, message)
  }).pipe(Effect.asVoid)

/**
 * The job handler of an app's generations. Its run marks the generation processing (a job whose row
 * never committed, or that was settled already, does nothing), renders while watching for a cancel
 * (the render is interrupted within `cancelCheck` of it, so its scoped resources are released), and
 * completes it: completed, or partial with the undelivered share refunded. When the job fails for
 * good its compensation fails the generation and refunds it (Generations.fail: once, however often
 * the compensation runs).
 */
export const makeGenerationHandler = (
  renderer: GenerationRenderer
): JobHandler<GenerationJobPayload, typeof GenerationJobPayload.Encoded, WorkerServices> => {
  const every = Duration.decode(renderer.cancelCheck ?? Duration.millis(500))
  return {
    definition: renderer.app.job,
    run: ({ generationId: id }, job) =>
      Effect.gen(function*() {
        const generations = yield* Generations
        const started = yield* generations.start(id)
        if (Option.isNone(started)) {
          return yield* Effect.logInfo("generation has nothing to run (never stored, or already settled)", { generationId: id })
        }
        const progress = (percent: number, delivered?: number) =>
          Effect.zipRight(
            job.progress(percent, delivered === undefined ? { generationId: id } : { generationId: id, delivered }),
            generations.progress(id, percent, delivered)
          ).pipe(
            Effect.catchAll((error) => Effect.logWarning("generation progress not recorded", { generationId: id, error: String(error) })),
            Effect.asVoid
          )
        // A database blip reads as "still processing": it must not stop a render.
        const stopped = generations.status(id).pipe(
          Effect.map(Option.match({ onNone: () => true, onSome: (status) => status !== "processing" })),
          Effect.orElseSucceed(() => false),
          Effect.repeat({ schedule: Schedule.spaced(every), until: (isStopped) => isStopped })
        )
        const rendered = yield* renderer.render({ generation: started.value, progress }).pipe(
          Effect.scoped,
          Effect.map(Option.some),
          Effect.raceFirst(Effect.as(stopped, Option.none<Rendered>()))
        )
        if (Option.isNone(rendered)) {
          return yield* Effect.logInfo("generation cancelled while rendering; render stopped", { generationId: id })
        }
        const completed = yield* generations.complete(id, rendered.value.outputs, rendered.value.delivered)
        if (Option.isNone(completed)) {
          // Cancelled (and refunded) after the render finished: the outputs are nobody's.
          const storage = yield* Storage
          yield* Effect.forEach(rendered.value.outputs, (output) => Effect.ignore(storage.delete(output.key)), { discard: true })
          yield* Effect.logInfo("generation settled before its render finished; outputs deleted", { generationId: id })
        }
      }),
    compensate: ({ generationId }, failure) => failGeneration(generationId, failure, renderer.describeFailure),
    // A payload that no longer decodes still names its generation: it is failed and refunded all the same.
    compensateUndecodable: (encoded, failure) => {
      const id = typeof encoded === "object" && encoded !== null && "generationId" in encoded ? encoded.generationId : undefined
      return typeof id === "string"
        ? failGeneration(id, failure, renderer.describeFailure)
        : Effect.dieMessage("the dead letter's payload names no generation")
    }
  }
}
