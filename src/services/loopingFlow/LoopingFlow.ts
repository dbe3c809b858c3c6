import type { Multipart } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect, Either, Schema, type Stream } from "effect"
import { GenerationNotFound } from "../generations/GenerationError.js"
import { Generations, type GenerationStatus } from "../generations/Generations.js"
import { ValidationError } from "../platform/DomainError.js"
import { Uploads } from "../uploads/Uploads.js"
import { loopCreditCost } from "./loopCost.js"
import { loopingFlowApp } from "./LoopingFlowApp.js"
import { AudioLayerNotFound, AudioLayerTaken, LoopingProjectNotFound, LoopingVideoNotFound, LoopNotReady } from "./LoopingFlowError.js"
import { type GenerateRequest, LayerFade, type LayerPatch, LayerVolume, type LoopSnapshot } from "./LoopSettings.js"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Frames `reverse` holds in memory for a boomerang, bounded: width x height x 1.5 bytes x 60 fps x seconds. */
const BOOMERANG_MAX_BYTES = 1024 ** 3
/** The project list carries each project's latest generations (the old backend's 5). */
const LIST_GENERATIONS = 5

export interface LoopVideo {
  readonly id: string
  readonly uploadId: string
  readonly fileName: string
  readonly fileSize: number
  readonly duration: number | null
  readonly width: number | null
  readonly height: number | null
  readonly mimeType: string
  readonly storageKey: string
  readonly createdAt: Date
}

export interface LoopAudioLayer {
  readonly id: string
  readonly uploadId: string
  readonly layerIndex: number
  readonly fileName: string
  readonly fileSize: number
  readonly duration: number | null
  readonly volume: number
  readonly muted: boolean
  readonly fadeIn: number
  readonly fadeOut: number
  readonly storageKey: string
}

/** A generation of this app, as its project shows it. */
export interface LoopGeneration {
  readonly id: string
  readonly status: GenerationStatus
  readonly progress: number
  readonly settings: Readonly<Record<string, unknown>>
  /** Charged minus refunded. */
  readonly creditUsed: number
  readonly outputs: ReadonlyArray<{ readonly key: string; readonly size: number }>
  readonly errorMessage: string | null
  readonly createdAt: Date
  readonly completedAt: Date | null
}

interface GenerationRowLite {
  readonly id: string
  readonly status: GenerationStatus
  readonly progress: number
  readonly settings: Record<string, unknown>
  readonly charged: string
  readonly refunded: string
  readonly outputs: ReadonlyArray<{ readonly key: string; readonly size: number }>
  readonly error_message: string | null
  readonly created_at: Date
  readonly completed_at: Date | null
}

const toGeneration = (r: GenerationRowLite): LoopGeneration => ({
  id: r.id,
  status: r.status,
  progress: r.progress,
  settings: r.settings,
  creditUsed: Number(r.charged) - Number(r.refunded),
  outputs: r.outputs,
  errorMessage: r.error_message,
  createdAt: r.created_at,
  completedAt: r.completed_at
})

export interface LoopProject {
  readonly id: string
  readonly name: string
  readonly description: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
  readonly videos: ReadonlyArray<LoopVideo>
  readonly audioLayers: ReadonlyArray<LoopAudioLayer>
  readonly generations: ReadonlyArray<LoopGeneration>
}

interface ProjectRow {
  readonly id: string
  readonly name: string
  readonly description: string | null
  readonly created_at: Date
  readonly updated_at: Date
}

interface VideoRow {
  readonly id: string
  readonly project_id: string
  readonly upload_id: string
  readonly original_name: string
  readonly extension: string
  readonly size_bytes: string
  readonly duration_seconds: number | null
  readonly width: number | null
  readonly height: number | null
  readonly mime: string
  readonly storage_key: string
  readonly created_at: Date
}

interface LayerRow {
  readonly id: string
  readonly project_id: string
  readonly upload_id: string
  readonly layer_index: number
  readonly original_name: string
  readonly extension: string
  readonly size_bytes: string
  readonly duration_seconds: number | null
  readonly volume: number
  readonly muted: boolean
  readonly fade_in: number
  readonly fade_out: number
  readonly storage_key: string
}

const toVideo = (r: VideoRow): LoopVideo => ({
  id: r.id,
  uploadId: r.upload_id,
  fileName: `${r.original_name}.${r.extension}`,
  fileSize: Number(r.size_bytes),
  duration: r.duration_seconds,
  width: r.width,
  height: r.height,
  mimeType: r.mime,
  storageKey: r.storage_key,
  createdAt: r.created_at
})

const toLayer = (r: LayerRow): LoopAudioLayer => ({
  id: r.id,
  uploadId: r.upload_id,
  layerIndex: r.layer_index,
  fileName: `${r.original_name}.${r.extension}`,
  fileSize: Number(r.size_bytes),
  duration: r.duration_seconds,
  volume: r.volume,
  muted: r.muted,
  fadeIn: r.fade_in,
  fadeOut: r.fade_out,
  storageKey: r.storage_key
})

const projectNotFound = new LoopingProjectNotFound({ message: "No such project" })
const videoNotFound = new LoopingVideoNotFound({ message: "No such video" })
const layerNotFound = new AudioLayerNotFound({ message: "No such audio layer" })

/** A multipart text field as a number in [min, max] (the schema of the JSON routes, for form fields). */
const fieldNumber = (fields: Readonly<Record<string, string>>, name: string, schema: Schema.Schema<number>, fallback: number) => {
  const raw = fields[name]
  if (raw === undefined || raw.trim() === "") return Either.right(fallback)
  const value = /^\s*-?\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : Number.NaN
  return Schema.decodeEither(schema)(value).pipe(
    Either.mapLeft(() => new ValidationError({ message: `${name} must be a number in its range (got "${raw.slice(0, 20)}")`, field: name }))
  )
}

export interface LayerFields {
  readonly layerIndex: number
  readonly volume: number
  readonly fadeIn: number
  readonly fadeOut: number
  readonly muted: boolean
}

/** The multipart fields of a layer upload, checked before the file is read (400 names the field). */
export const layerFields = (fields: Readonly<Record<string, string>>): Either.Either<LayerFields, ValidationError> =>
  Either.gen(function*() {
    const index = fields["layerIndex"]
    if (index === undefined || !/^[0-3]$/.test(index.trim())) {
      return yield* Either.left(new ValidationError({ message: "layerIndex must be 0, 1, 2 or 3 (sent before the file)", field: "layerIndex" }))
    }
    const muted = fields["muted"]
    if (muted !== undefined && muted !== "true" && muted !== "false") {
      return yield* Either.left(new ValidationError({ message: "muted must be true or false", field: "muted" }))
    }
    return {
      layerIndex: Number(index),
      volume: yield* fieldNumber(fields, "volume", LayerVolume, 100),
      fadeIn: yield* fieldNumber(fields, "fadeIn", LayerFade("fadeIn"), 0),
      fadeOut: yield* fieldNumber(fields, "fadeOut", LayerFade("fadeOut"), 0),
      muted: muted === "true"
    }
  })

const isUniqueViolation = (error: unknown) =>
  typeof error === "object" && error !== null && "cause" in error &&
  typeof error.cause === "object" && error.cause !== null && "code" in error.cause && error.cause.code === "23505"
const isForeignKeyViolation = (error: unknown) =>
  typeof error === "object" && error !== null && "cause" in error &&
  typeof error.cause === "object" && error.cause !== null && "code" in error.cause && error.cause.code === "23503"

/**
 * Looping Flow (issue 14): projects, their source videos and audio layers (files through the shared
 * upload pipeline), the estimate, and generate, which snapshots everything the render needs into the
 * generation's settings and goes through the one generation flow (charge, enqueue, refund on failure or
 * cancel). Every id is looked up with its owner: someone else's is not found, like a missing one.
 */
export class LoopingFlow extends Effect.Service<LoopingFlow>()("app/LoopingFlow", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const uploads = yield* Uploads
    const generations = yield* Generations

    const videosOf = (projectIds: ReadonlyArray<string>) =>
      projectIds.length === 0 ? Effect.succeed([] as ReadonlyArray<VideoRow>) : sql<VideoRow>`
        SELECT v.id, v.project_id, v.upload_id, v.created_at, u.original_name, u.extension, u.size_bytes, u.duration_seconds,
               u.width, u.height, u.mime, u.storage_key
        FROM looping_videos v JOIN uploads u ON u.id = v.upload_id
        WHERE v.project_id IN ${sql.in(projectIds)} ORDER BY v.created_at, v.id`
    const layersOf = (projectIds: ReadonlyArray<string>) =>
      projectIds.length === 0 ? Effect.succeed([] as ReadonlyArray<LayerRow>) : sql<LayerRow>`
        SELECT l.id, l.project_id, l.upload_id, l.layer_index, l.volume, l.muted, l.fade_in, l.fade_out,
               u.original_name, u.extension, u.size_bytes, u.duration_seconds, u.storage_key
        FROM looping_audio_layers l JOIN uploads u ON u.id = l.upload_id
        WHERE l.project_id IN ${sql.in(projectIds)} ORDER BY l.layer_index`

    const generationsOf = (userId: string, projectId: string, limit?: number) =>
      Effect.map(
        sql<GenerationRowLite>`
          SELECT id, status, progress, settings, charged, refunded, outputs, error_message, created_at, completed_at
          FROM generations WHERE user_id = ${userId} AND app = ${loopingFlowApp.appId} AND project_id = ${projectId}
          ORDER BY created_at DESC, id DESC ${limit === undefined ? sql`` : sql`LIMIT ${limit}`}`,
        (rows) => rows.map(toGeneration)
      )

    const assemble = (userId: string, rows: ReadonlyArray<ProjectRow>, limit?: number) =>
      Effect.gen(function*() {
        const ids = rows.map((r) => r.id)
        const videos = yield* videosOf(ids)
        const layers = yield* layersOf(ids)
        return yield* Effect.forEach(rows, (row) =>
          Effect.map(generationsOf(userId, row.id, limit), (gens): LoopProject => ({
            id: row.id,
            name: row.name,
            description: row.description,
            createdAt: row.created_at,
            updatedAt: row.updated_at,
            videos: videos.filter((v) => v.project_id === row.id).map(toVideo),
            audioLayers: layers.filter((l) => l.project_id === row.id).map(toLayer),
            generations: gens
          })))
      })

    const ownedProject = (userId: string, id: string) =>
      UUID.test(id)
        ? Effect.flatMap(
          sql<ProjectRow>`SELECT * FROM looping_projects WHERE id = ${id} AND user_id = ${userId}`,
          (rows) => (rows[0] === undefined ? Effect.fail(projectNotFound) : Effect.succeed(rows[0]))
        )
        : Effect.fail(projectNotFound)

    const listProjects = Effect.fn("LoopingFlow.listProjects")(function*(userId: string) {
      const rows = yield* sql<ProjectRow>`SELECT * FROM looping_projects WHERE user_id = ${userId} ORDER BY created_at DESC, id DESC`
      return yield* assemble(userId, rows, LIST_GENERATIONS)
    }, Effect.orDie)

    const getProject = Effect.fn("LoopingFlow.getProject")(function*(userId: string, id: string) {
      const row = yield* ownedProject(userId, id)
      const [project] = yield* assemble(userId, [row])
      return project!
    }, Effect.catchTag("SqlError", Effect.die))

    const createProject = Effect.fn("LoopingFlow.createProject")(function*(
      userId: string,
      input: { readonly name: string; readonly description?: string | undefined }
    ) {
      const rows = yield* sql<ProjectRow>`
        INSERT INTO looping_projects (user_id, name, description) VALUES (${userId}, ${input.name}, ${input.description ?? null})
        RETURNING *`
      const [project] = yield* assemble(userId, rows)
      return project!
    }, Effect.orDie)

    /** Deletes the project with its files (their quota released); its generations and their outputs stay the user's. */
    const deleteProject = Effect.fn("LoopingFlow.deleteProject")(function*(userId: string, id: string) {
      yield* ownedProject(userId, id)
      const files = yield* sql<{ upload_id: string }>`
        SELECT upload_id FROM looping_videos WHERE project_id = ${id}
        UNION ALL SELECT upload_id FROM looping_audio_layers WHERE project_id = ${id}`
      yield* Effect.forEach(files, (f) => uploads.remove(userId, f.upload_id).pipe(Effect.catchTag("UploadNotFound", () => Effect.void)), {
        discard: true
      })
      yield* sql`DELETE FROM looping_projects WHERE id = ${id} AND user_id = ${userId}`
    }, Effect.catchTag("SqlError", Effect.die))

    /** A source video into the caller's project (multipart `projectId` before `file`), checked before a byte is stored. */
    const addVideo = Effect.fn("LoopingFlow.addVideo")(function*(
      userId: string,
      parts: Stream.Stream<Multipart.Part, Multipart.MultipartError>,
      declaredBytes: number | undefined
    ) {
      const received = yield* uploads.receive({
        userId,
        kind: "video",
        parts,
        declaredBytes,
        fields: ["projectId"],
        beforeStore: (fields): Effect.Effect<void, ValidationError | LoopingProjectNotFound> =>
          fields["projectId"] === undefined
            ? Effect.fail(new ValidationError({ message: "projectId is required (sent before the file)", field: "projectId" }))
            : Effect.asVoid(ownedProject(userId, fields["projectId"]).pipe(Effect.catchTag("SqlError", Effect.die)))
      })
      const projectId = received.fields["projectId"]!
      const linked = yield* sql<{ id: string }>`
        INSERT INTO looping_videos (project_id, upload_id)
        SELECT id, ${received.upload.id} FROM looping_projects WHERE id = ${projectId} AND user_id = ${userId}
        RETURNING id`.pipe(Effect.orDie)
      if (linked[0] === undefined) {
        // the project was deleted while the file streamed in
        yield* uploads.remove(userId, received.upload.id).pipe(Effect.ignore)
        return yield* projectNotFound
      }
      const [video] = yield* sql<VideoRow>`
        SELECT v.id, v.project_id, v.upload_id, v.created_at, u.original_name, u.extension, u.size_bytes, u.duration_seconds,
               u.width, u.height, u.mime, u.storage_key
        FROM looping_videos v JOIN uploads u ON u.id = v.upload_id WHERE v.id = ${linked[0].id}`.pipe(Effect.orDie)
      return { video: toVideo(video!), storageUsed: received.storageUsed }
    })

    const ownedVideo = (userId: string, id: string) =>
      UUID.test(id)
        ? Effect.flatMap(sql<VideoRow>`
            SELECT v.id, v.project_id, v.upload_id, v.created_at, u.original_name, u.extension, u.size_bytes, u.duration_seconds,
                   u.width, u.height, u.mime, u.storage_key
            FROM looping_videos v JOIN uploads u ON u.id = v.upload_id JOIN looping_projects p ON p.id = v.project_id
            WHERE v.id = ${id} AND p.user_id = ${userId}`, (rows) => (rows[0] === undefined ? Effect.fail(videoNotFound) : Effect.succeed(rows[0])))
        : Effect.fail(videoNotFound)

    /** Deletes the video and its file (quota released); generations already made from it keep their snapshot. */
    const removeVideo = Effect.fn("LoopingFlow.removeVideo")(function*(userId: string, id: string) {
      const video = yield* ownedVideo(userId, id)
      return yield* uploads.remove(userId, video.upload_id).pipe(Effect.catchTag("UploadNotFound", () => Effect.fail(videoNotFound)))
    }, Effect.catchTag("SqlError", Effect.die))

    /** An audio layer for the caller's project: fields `layerIndex, volume, fadeIn, fadeOut` (and `muted`) before `file`. */
    const addAudioLayer = Effect.fn("LoopingFlow.addAudioLayer")(function*(
      userId: string,
      projectId: string,
      parts: Stream.Stream<Multipart.Part, Multipart.MultipartError>,
      declaredBytes: number | undefined
    ) {
      const taken = (layerIndex: number) =>
        new AudioLayerTaken({ message: `The project already has an audio layer at index ${layerIndex}: edit or delete it`, layerIndex })
      const received = yield* uploads.receive({
        userId,
        kind: "audio",
        parts,
        declaredBytes,
        fields: ["layerIndex", "volume", "fadeIn", "fadeOut", "muted"],
        beforeStore: (fields) =>
          Effect.gen(function*() {
            yield* ownedProject(userId, projectId)
            const layer = yield* layerFields(fields)
            const existing = yield* sql`SELECT 1 FROM looping_audio_layers WHERE project_id = ${projectId} AND layer_index = ${layer.layerIndex}`
            if (existing.length > 0) return yield* taken(layer.layerIndex)
          }).pipe(Effect.catchTag("SqlError", Effect.die))
      })
      const layer = Either.getOrThrow(layerFields(received.fields))
      const inserted = yield* sql<{ id: string }>`
        INSERT INTO looping_audio_layers (project_id, upload_id, layer_index, volume, muted, fade_in, fade_out)
        SELECT id, ${received.upload.id}, ${layer.layerIndex}, ${layer.volume}, ${layer.muted}, ${layer.fadeIn}, ${layer.fadeOut}
        FROM looping_projects WHERE id = ${projectId} AND user_id = ${userId}
        RETURNING id`.pipe(
        Effect.map((rows) => rows[0]),
        Effect.catchAll((error) => Effect.succeed(isUniqueViolation(error) ? ("taken" as const) : error))
      )
      if (inserted === undefined || inserted === "taken" || !("id" in inserted)) {
        yield* uploads.remove(userId, received.upload.id).pipe(Effect.ignore)
        if (inserted === "taken") return yield* taken(layer.layerIndex)
        if (inserted === undefined || isForeignKeyViolation(inserted)) return yield* projectNotFound
        return yield* Effect.die(inserted)
      }
      return { audioLayer: yield* layerById(userId, inserted.id), storageUsed: received.storageUsed }
    })

    const layerById = (userId: string, id: string) =>
      UUID.test(id)
        ? Effect.flatMap(sql<LayerRow>`
            SELECT l.id, l.project_id, l.upload_id, l.layer_index, l.volume, l.muted, l.fade_in, l.fade_out,
                   u.original_name, u.extension, u.size_bytes, u.duration_seconds, u.storage_key
            FROM looping_audio_layers l JOIN uploads u ON u.id = l.upload_id JOIN looping_projects p ON p.id = l.project_id
            WHERE l.id = ${id} AND p.user_id = ${userId}`, (rows) => (rows[0] === undefined ? Effect.fail(layerNotFound) : Effect.succeed(toLayer(rows[0])))).pipe(
          Effect.catchTag("SqlError", Effect.die)
        )
        : Effect.fail(layerNotFound)

    const updateAudioLayer = Effect.fn("LoopingFlow.updateAudioLayer")(function*(userId: string, id: string, patch: LayerPatch) {
      const layer = yield* layerById(userId, id)
      yield* sql`
        UPDATE looping_audio_layers SET volume = ${patch.volume ?? layer.volume}, muted = ${patch.muted ?? layer.muted},
          fade_in = ${patch.fadeIn ?? layer.fadeIn}, fade_out = ${patch.fadeOut ?? layer.fadeOut}
        WHERE id = ${id}`.pipe(Effect.orDie)
      return yield* layerById(userId, id)
    })

    const removeAudioLayer = Effect.fn("LoopingFlow.removeAudioLayer")(function*(userId: string, id: string) {
      const layer = yield* layerById(userId, id)
      return yield* uploads.remove(userId, layer.uploadId).pipe(Effect.catchTag("UploadNotFound", () => Effect.fail(layerNotFound)))
    })

    /**
     * Starts a loop: the video must be in the caller's project; the settings, the source's and the layers'
     * storage keys are snapshotted into the generation, which is charged (loopCreditCost) and enqueued in one
     * transaction by the generation flow.
     */
    const generate = Effect.fn("LoopingFlow.generate")(function*(userId: string, request: GenerateRequest) {
      yield* ownedProject(userId, request.projectId)
      const video = yield* ownedVideo(userId, request.videoId)
      if (video.project_id !== request.projectId) return yield* videoNotFound
      if (request.loopStyle === "boomerang" && video.width !== null && video.height !== null && video.duration_seconds !== null) {
        const bytes = video.width * video.height * 1.5 * 60 * video.duration_seconds
        if (bytes > BOOMERANG_MAX_BYTES) {
          const seconds = Math.floor(BOOMERANG_MAX_BYTES / (video.width * video.height * 1.5 * 60))
          return yield* new ValidationError({
            message: `A boomerang plays the source backwards from memory: at ${video.width}x${video.height} the source may be at most ${seconds} s long`,
            field: "loopStyle"
          })
        }
      }
      const layers = yield* layersOf([request.projectId])
      const settings: LoopSnapshot = {
        videoId: video.id,
        sourceKey: video.storage_key,
        targetDuration: request.targetDuration,
        loopStyle: request.loopStyle,
        crossfadeDuration: request.crossfadeDuration,
        videoCrossfade: request.videoCrossfade,
        audioCrossfade: request.audioCrossfade,
        masterVolume: request.masterVolume,
        audioFadeIn: request.audioFadeIn,
        audioFadeOut: request.audioFadeOut,
        muteOriginal: request.muteOriginal,
        audioLayers: layers.map((l) => ({
          layerIndex: l.layer_index,
          storageKey: l.storage_key,
          volume: l.volume,
          muted: l.muted,
          fadeIn: l.fade_in,
          fadeOut: l.fade_out
        }))
      }
      const generation = yield* generations.create({
        userId,
        app: loopingFlowApp.appId,
        projectId: request.projectId,
        units: 1,
        cost: loopCreditCost(request.targetDuration),
        settings
      })
      const creditBalance = generation.balance
      const loop: LoopGeneration = {
        id: generation.id,
        status: generation.status,
        progress: generation.progress,
        settings: generation.settings,
        creditUsed: generation.charged - generation.refunded,
        outputs: generation.outputs,
        errorMessage: generation.errorMessage,
        createdAt: generation.createdAt,
        completedAt: generation.completedAt
      }
      return { generation: loop, creditBalance }
    }, Effect.catchTag("SqlError", Effect.die))

    const projectGenerations = Effect.fn("LoopingFlow.projectGenerations")(function*(userId: string, projectId: string) {
      yield* ownedProject(userId, projectId)
      return yield* generationsOf(userId, projectId)
    }, Effect.catchTag("SqlError", Effect.die))

    /** The caller's generation of this app; anyone else's (or another app's) is not found. */
    const generation = Effect.fn("LoopingFlow.generation")(function*(userId: string, generationId: string) {
      const rows = UUID.test(generationId)
        ? yield* sql<GenerationRowLite>`
            SELECT id, status, progress, settings, charged, refunded, outputs, error_message, created_at, completed_at
            FROM generations WHERE id = ${generationId} AND user_id = ${userId} AND app = ${loopingFlowApp.appId}`.pipe(Effect.orDie)
        : []
      if (rows[0] === undefined) return yield* new GenerationNotFound({ message: "No such generation" })
      return toGeneration(rows[0])
    })

    /** The caller's finished loop, for download. */
    const output = Effect.fn("LoopingFlow.output")(function*(userId: string, generationId: string) {
      const found = yield* generation(userId, generationId)
      const out = found.outputs[0]
      if (out === undefined) {
        return yield* new LoopNotReady({ message: `The loop is ${found.status}: there is nothing to download`, generationStatus: found.status })
      }
      return { generation: found, key: out.key, size: out.size }
    })

    return {
      listProjects,
      getProject,
      createProject,
      deleteProject,
      addVideo,
      removeVideo,
      addAudioLayer,
      updateAudioLayer,
      removeAudioLayer,
      generate,
      projectGenerations,
      generation,
      output,
      estimate: loopCreditCost
    } as const
  })
}) {}
