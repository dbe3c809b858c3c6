import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { GenerationNotFound } from "../generations/GenerationError.js"
import { type Generation, type GenerationOutput, Generations, type GenerationStatus } from "../generations/Generations.js"
import { AppConfig } from "../platform/AppConfig.js"
import { ValidationError } from "../platform/DomainError.js"
import { LeanSql } from "../platform/LeanSql.js"
import type { Upload } from "../uploads/Uploads.js"
import { Uploads } from "../uploads/Uploads.js"
import { estimateMix } from "./estimate.js"
import { creditCostPerOutput, type MixClip, type MixGroup, type MixJobSettings, type MixSettings } from "./MixSettings.js"
import { videoMixerApp } from "./VideoMixerApp.js"
import { GroupNotFound, OutputNotFound, OutputsNotReady, ProjectBusy, ProjectNotFound, VideoNotFound } from "./VideoMixerError.js"

const APP = videoMixerApp.appId
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const ACTIVE = ["pending", "processing"] as const

export interface Project {
  readonly id: string
  readonly name: string
  readonly description: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

export interface Group {
  readonly id: string
  readonly projectId: string
  readonly name: string
  readonly order: number
  readonly createdAt: Date
}

export interface Video {
  readonly id: string
  readonly projectId: string
  readonly groupId: string | null
  readonly uploadId: string
  readonly order: number
  readonly fileName: string
  readonly fileSize: number
  readonly mimeType: string
  readonly duration: number
  readonly width: number | null
  readonly height: number | null
  readonly storageKey: string
  readonly createdAt: Date
}

/** A project with its videos and its groups (each with its videos), in project order. */
export interface ProjectDetail extends Project {
  readonly videos: ReadonlyArray<Video>
  readonly groups: ReadonlyArray<Group & { readonly videos: ReadonlyArray<Video> }>
}

/** A Video Mixer generation as its project lists it. */
export interface MixGeneration {
  readonly id: string
  readonly projectId: string
  readonly status: GenerationStatus
  readonly progress: number
  readonly unitsRequested: number
  readonly unitsDelivered: number
  readonly charged: number
  readonly refunded: number
  readonly settings: Readonly<Record<string, unknown>>
  readonly outputs: ReadonlyArray<GenerationOutput>
  readonly errorMessage: string | null
  readonly createdAt: Date
  readonly completedAt: Date | null
}

export interface ProjectText {
  readonly name: string
  readonly description?: string | null | undefined
}

export interface MixRequest {
  readonly projectId: string
  readonly totalVideos: number
  readonly settings: MixSettings
}

interface ProjectRow {
  readonly id: string
  readonly name: string
  readonly description: string | null
  readonly created_at: Date
  readonly updated_at: Date
}
interface GroupRow {
  readonly id: string
  readonly project_id: string
  readonly name: string
  readonly order: number
  readonly created_at: Date
}
interface VideoRow {
  readonly id: string
  readonly project_id: string
  readonly group_id: string | null
  readonly upload_id: string
  readonly order: number
  readonly file_name: string
  readonly size_bytes: string
  readonly mime: string
  readonly duration_seconds: number | null
  readonly width: number | null
  readonly height: number | null
  readonly storage_key: string
  readonly created_at: Date
}
interface GenerationRow {
  readonly id: string
  readonly project_id: string
  readonly status: GenerationStatus
  readonly progress: number
  readonly units_requested: number
  readonly units_delivered: number
  readonly charged: string
  readonly refunded: string
  readonly settings: Record<string, unknown>
  readonly outputs: ReadonlyArray<GenerationOutput>
  readonly error_message: string | null
  readonly created_at: Date
  readonly completed_at: Date | null
}

const toProject = (r: ProjectRow): Project => ({
  id: r.id,
  name: r.name,
  description: r.description,
  createdAt: r.created_at,
  updatedAt: r.updated_at
})
const toGroup = (r: GroupRow): Group => ({ id: r.id, projectId: r.project_id, name: r.name, order: r.order, createdAt: r.created_at })
const toVideo = (r: VideoRow): Video => ({
  id: r.id,
  projectId: r.project_id,
  groupId: r.group_id,
  uploadId: r.upload_id,
  order: r.order,
  fileName: r.file_name,
  fileSize: Number(r.size_bytes),
  mimeType: r.mime,
  duration: r.duration_seconds ?? 0,
  width: r.width,
  height: r.height,
  storageKey: r.storage_key,
  createdAt: r.created_at
})
const toGeneration = (r: GenerationRow): MixGeneration => ({
  id: r.id,
  projectId: r.project_id,
  status: r.status,
  progress: r.progress,
  unitsRequested: r.units_requested,
  unitsDelivered: r.units_delivered,
  charged: Number(r.charged),
  refunded: Number(r.refunded),
  settings: r.settings,
  outputs: r.outputs,
  errorMessage: r.error_message,
  createdAt: r.created_at,
  completedAt: r.completed_at
})

/** The Generations service's row as a project's generation. */
const fromGeneration = (g: Generation, projectId: string): MixGeneration => ({
  id: g.id,
  projectId,
  status: g.status,
  progress: g.progress,
  unitsRequested: g.unitsRequested,
  unitsDelivered: g.unitsDelivered,
  charged: g.charged,
  refunded: g.refunded,
  settings: g.settings,
  outputs: g.outputs,
  errorMessage: g.errorMessage,
  createdAt: g.createdAt,
  completedAt: g.completedAt
})

const projectNotFound = () => new ProjectNotFound({ message: "No such project" })
const generationNotFound = () => new GenerationNotFound({ message: "No such generation" })

/**
 * Video Mixer's projects, groups and source videos, and the estimate and start of its generations.
 * Every id is checked against the caller: another user's project, group, video or generation answers
 * the same 404 as a missing one. Source files are uploads (services/uploads): stored, counted in the
 * quota and deleted through `Uploads`. A generation renders a snapshot of the project's clips taken
 * when it is accepted; while one is pending or processing, its project's videos cannot be deleted
 * (the snapshot names their files): the project row is locked by generate and by every delete, so the
 * check and the change cannot interleave.
 */
export class VideoMixer extends Effect.Service<VideoMixer>()("app/VideoMixer", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lean = yield* LeanSql
    const uploads = yield* Uploads
    const generations = yield* Generations
    const config = yield* AppConfig

    const videoRows = (projectIds: ReadonlyArray<string>) =>
      projectIds.length === 0
        ? Effect.succeed<ReadonlyArray<VideoRow>>([])
        : sql<VideoRow>`
          SELECT v.id, v.project_id, v.group_id, v.upload_id, v."order", v.file_name, v.created_at,
                 u.size_bytes, u.mime, u.duration_seconds, u.width, u.height, u.storage_key
          FROM video_mixer_videos v JOIN uploads u ON u.id = v.upload_id
          WHERE v.project_id IN ${sql.in(projectIds)}
          ORDER BY v."order", v.created_at, v.id`.pipe(Effect.orDie)
    const groupRows = (projectIds: ReadonlyArray<string>) =>
      projectIds.length === 0
        ? Effect.succeed<ReadonlyArray<GroupRow>>([])
        : sql<GroupRow>`
          SELECT * FROM video_mixer_groups WHERE project_id IN ${sql.in(projectIds)}
          ORDER BY "order", created_at, id`.pipe(Effect.orDie)

    /** The caller's project; `lock` takes its row lock (in the caller's transaction). */
    const ownedProject = (userId: string, id: string, lock = false) =>
      Effect.gen(function*() {
        if (!UUID.test(id)) return yield* projectNotFound()
        const rows = yield* lean.run(lock
          ? sql<ProjectRow>`SELECT * FROM video_mixer_projects WHERE id = ${id} AND user_id = ${userId} FOR UPDATE`
          : sql<ProjectRow>`SELECT * FROM video_mixer_projects WHERE id = ${id} AND user_id = ${userId}`).pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined) return yield* projectNotFound()
        return toProject(row)
      })

    const detail = (projects: ReadonlyArray<Project>) =>
      Effect.gen(function*() {
        const ids = projects.map((p) => p.id)
        const videos = (yield* videoRows(ids)).map(toVideo)
        const groups = (yield* groupRows(ids)).map(toGroup)
        return projects.map((project): ProjectDetail => ({
          ...project,
          videos: videos.filter((v) => v.projectId === project.id),
          groups: groups.filter((g) => g.projectId === project.id).map((g) => ({
            ...g,
            videos: videos.filter((v) => v.groupId === g.id)
          }))
        }))
      })

    /** Throws ProjectBusy when a generation of the project is still to settle (call with the project locked). */
    const ensureIdle = (projectId: string) =>
      Effect.gen(function*() {
        const active = yield* sql`
          SELECT 1 FROM generations
          WHERE project_id = ${projectId} AND app = ${APP} AND status IN ${sql.in(ACTIVE)} LIMIT 1`.pipe(Effect.orDie)
        if (active.length > 0) {
          return yield* new ProjectBusy({
            message: "A generation of this project is still running: wait for it to finish or cancel it first"
          })
        }
      })

    /** A group id of the request: a UUID of a group in `projectId`, else 400 (the same answer for any other id). */
    const groupInProject = (projectId: string, groupId: string) =>
      Effect.gen(function*() {
        const rows = UUID.test(groupId)
          ? yield* sql`SELECT 1 FROM video_mixer_groups WHERE id = ${groupId} AND project_id = ${projectId}`.pipe(Effect.orDie)
          : []
        if (rows.length === 0) {
          return yield* new ValidationError({ message: "groupId must be a group of the same project", field: "groupId" })
        }
      })

    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      sql.withTransaction(effect).pipe(Effect.catchTag("SqlError", Effect.die))

    // ---- projects

    const listProjects = Effect.fn("VideoMixer.listProjects")(function*(userId: string) {
      const rows = yield* sql<ProjectRow>`
        SELECT * FROM video_mixer_projects WHERE user_id = ${userId} ORDER BY created_at DESC, id DESC`.pipe(Effect.orDie)
      return yield* detail(rows.map(toProject))
    })

    const createProject = Effect.fn("VideoMixer.createProject")(function*(userId: string, text: ProjectText) {
      const rows = yield* sql<ProjectRow>`
        INSERT INTO video_mixer_projects (user_id, name, description)
        VALUES (${userId}, ${text.name}, ${text.description ?? null})
        RETURNING *`.pipe(Effect.orDie)
      return { ...toProject(rows[0]!), videos: [], groups: [] } satisfies ProjectDetail
    })

    const getProject = Effect.fn("VideoMixer.getProject")(function*(userId: string, id: string) {
      const project = yield* ownedProject(userId, id)
      return (yield* detail([project]))[0]!
    })

    const updateProject = Effect.fn("VideoMixer.updateProject")(
      function*(userId: string, id: string, text: { readonly name?: string | undefined; readonly description?: string | null | undefined }) {
        yield* ownedProject(userId, id)
        const rows = yield* sql<ProjectRow>`
          UPDATE video_mixer_projects
          SET name = COALESCE(${text.name ?? null}, name),
              description = CASE WHEN ${text.description === undefined} THEN description ELSE ${text.description ?? null} END,
              updated_at = clock_timestamp()
          WHERE id = ${id} AND user_id = ${userId}
          RETURNING *`.pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined) return yield* projectNotFound()
        return (yield* detail([toProject(row)]))[0]!
      }
    )

    /**
     * Deletes the project with everything it holds: its generations (a pending or running one is
     * cancelled and refunded first) and their outputs, its videos' files (their quota released), its
     * groups. Under the project's row lock, so no generation can start meanwhile.
     */
    const deleteProject = Effect.fn("VideoMixer.deleteProject")(function*(userId: string, id: string) {
      return yield* transaction(Effect.gen(function*() {
        yield* ownedProject(userId, id, true)
        const gens = yield* sql<{ id: string }>`
          SELECT id FROM generations WHERE project_id = ${id} AND user_id = ${userId} AND app = ${APP}`.pipe(Effect.orDie)
        yield* Effect.forEach(gens, (g) => generations.remove(g.id, userId).pipe(
          Effect.catchTag("GenerationNotFound", () => Effect.void)
        ), { discard: true })
        const videos = yield* sql<{ upload_id: string }>`
          SELECT upload_id FROM video_mixer_videos WHERE project_id = ${id}`.pipe(Effect.orDie)
        let freedSpace = 0
        for (const video of videos) {
          const removed = yield* uploads.remove(userId, video.upload_id).pipe(
            Effect.catchTag("UploadNotFound", () => Effect.succeed({ freedSpace: 0 }))
          )
          freedSpace += removed.freedSpace
        }
        yield* sql`DELETE FROM video_mixer_projects WHERE id = ${id} AND user_id = ${userId}`.pipe(Effect.orDie)
        return { freedSpace, deletedVideos: videos.length, deletedGenerations: gens.length }
      }))
    })

    // ---- groups

    const createGroup = Effect.fn("VideoMixer.createGroup")(
      function*(userId: string, input: { readonly projectId: string; readonly name: string; readonly order?: number | undefined }) {
        yield* ownedProject(userId, input.projectId)
        const rows = yield* sql<GroupRow>`
          INSERT INTO video_mixer_groups (project_id, name, "order")
          SELECT ${input.projectId}, ${input.name},
                 COALESCE(${input.order ?? null}::integer, (SELECT count(*)::integer FROM video_mixer_groups WHERE project_id = ${input.projectId}))
          RETURNING *`.pipe(Effect.orDie)
        return { ...toGroup(rows[0]!), videos: [] as ReadonlyArray<Video> }
      }
    )

    const listGroups = Effect.fn("VideoMixer.listGroups")(function*(userId: string, projectId: string) {
      const project = yield* getProject(userId, projectId)
      return project.groups
    })

    /** Deletes the caller's group; its videos stay in the project, ungrouped. */
    const deleteGroup = Effect.fn("VideoMixer.deleteGroup")(function*(userId: string, id: string) {
      const rows = UUID.test(id)
        ? yield* sql`
          DELETE FROM video_mixer_groups g USING video_mixer_projects p
          WHERE g.id = ${id} AND p.id = g.project_id AND p.user_id = ${userId}
          RETURNING g.id`.pipe(Effect.orDie)
        : []
      if (rows.length === 0) return yield* new GroupNotFound({ message: "No such group" })
    })

    // ---- videos

    /** The upload's `beforeStore`: the fields name a project of the caller (and a group of it); nothing is written before. */
    const checkUploadTarget = (userId: string) => (fields: Readonly<Record<string, string>>) =>
      Effect.gen(function*() {
        const projectId = fields["projectId"]
        if (projectId === undefined || !UUID.test(projectId)) {
          return yield* new ValidationError({ message: "projectId must be a UUID, sent before the file", field: "projectId" })
        }
        yield* ownedProject(userId, projectId)
        const groupId = groupField(fields)
        if (groupId !== null) yield* groupInProject(projectId, groupId)
      })

    /** The multipart groupId: absent, empty or "null" mean no group (a form cannot send null). */
    const groupField = (fields: Readonly<Record<string, string>>): string | null => {
      const value = fields["groupId"]
      return value === undefined || value === "" || value === "null" ? null : value
    }

    /**
     * Places a received upload in its project (after the end of the project's order). When the project
     * or the group went away while the file streamed, the upload is removed again (file and quota).
     */
    const addVideo = Effect.fn("VideoMixer.addVideo")(
      function*(userId: string, upload: Upload, fields: Readonly<Record<string, string>>) {
        const projectId = fields["projectId"]!
        const groupId = groupField(fields)
        const placed = yield* sql<{ id: string }>`
          INSERT INTO video_mixer_videos (project_id, group_id, upload_id, "order", file_name)
          SELECT p.id, ${groupId}, ${upload.id},
                 COALESCE((SELECT max("order") + 1 FROM video_mixer_videos WHERE project_id = p.id), 0),
                 ${`${upload.name}.${upload.extension}`}
          FROM video_mixer_projects p
          WHERE p.id = ${projectId} AND p.user_id = ${userId}
          RETURNING id`.pipe(Effect.either)
        const id = placed._tag === "Right" ? placed.right[0]?.id : undefined
        if (id === undefined) {
          yield* uploads.remove(userId, upload.id).pipe(Effect.ignoreLogged)
          if (placed._tag === "Left") yield* Effect.logWarning("video-mixer: upload not placed", { error: placed.left.message })
          return yield* projectNotFound()
        }
        const rows = yield* sql<VideoRow>`
          SELECT v.id, v.project_id, v.group_id, v.upload_id, v."order", v.file_name, v.created_at,
                 u.size_bytes, u.mime, u.duration_seconds, u.width, u.height, u.storage_key
          FROM video_mixer_videos v JOIN uploads u ON u.id = v.upload_id WHERE v.id = ${id}`.pipe(Effect.orDie)
        return toVideo(rows[0]!)
      }
    )

    const listVideos = Effect.fn("VideoMixer.listVideos")(function*(userId: string, projectId: string) {
      const project = yield* ownedProject(userId, projectId)
      return (yield* videoRows([project.id])).map(toVideo)
    })

    const ownedVideo = (userId: string, id: string) =>
      Effect.gen(function*() {
        const rows = UUID.test(id)
          ? yield* sql<{ project_id: string; upload_id: string }>`
            SELECT v.project_id, v.upload_id FROM video_mixer_videos v JOIN video_mixer_projects p ON p.id = v.project_id
            WHERE v.id = ${id} AND p.user_id = ${userId}`.pipe(Effect.orDie)
          : []
        const row = rows[0]
        if (row === undefined) return yield* new VideoNotFound({ message: "No such video" })
        return row
      })

    /** Moves the caller's video into a group of the same project, or out of any group (null). */
    const moveVideo = Effect.fn("VideoMixer.moveVideo")(function*(userId: string, id: string, groupId: string | null) {
      const video = yield* ownedVideo(userId, id)
      if (groupId !== null) yield* groupInProject(video.project_id, groupId)
      // The composite foreign key refuses a group of another project even if one raced in here.
      yield* sql`UPDATE video_mixer_videos SET group_id = ${groupId} WHERE id = ${id}`.pipe(Effect.orDie)
      const rows = yield* videoRows([video.project_id])
      return toVideo(rows.find((r) => r.id === id)!)
    })

    /** Deletes the caller's video and its file, releasing its quota; refused while a generation of its project runs. */
    const deleteVideo = Effect.fn("VideoMixer.deleteVideo")(function*(userId: string, id: string) {
      return yield* transaction(Effect.gen(function*() {
        const video = yield* ownedVideo(userId, id)
        yield* ownedProject(userId, video.project_id, true)
        yield* ensureIdle(video.project_id)
        return yield* uploads.remove(userId, video.upload_id).pipe(
          Effect.catchTag("UploadNotFound", () => new VideoNotFound({ message: "No such video" }))
        )
      }))
    })

    // ---- estimate and generate

    const checkTotal = (totalVideos: number) => {
      const max = config.videoMixer.maxOutputs
      return Number.isSafeInteger(totalVideos) && totalVideos >= 1 && totalVideos <= max
        ? Effect.void
        : Effect.fail(new ValidationError({ message: `totalVideos must be a whole number from 1 to ${max}`, field: "totalVideos" }))
    }

    /** The project's clips and groups in project order: what a generation renders. */
    /**
     * The clips and groups a generation renders, in their order, as one statement (a generate takes
     * it in its transaction after locking the project, so no delete can change them meanwhile).
     */
    const snapshot = (projectId: string) =>
      lean.run(sql<{ readonly clips: ReadonlyArray<MixClip>; readonly groups: ReadonlyArray<MixGroup> }>`
        SELECT
          COALESCE((
            SELECT json_agg(json_build_object(
                     'videoId', v.id, 'groupId', v.group_id, 'order', v."order", 'storageKey', u.storage_key,
                     'durationSeconds', COALESCE(u.duration_seconds, 0), 'width', u.width, 'height', u.height
                   ) ORDER BY v."order", v.created_at, v.id)
            FROM video_mixer_videos v JOIN uploads u ON u.id = v.upload_id
            WHERE v.project_id = ${projectId}
          ), '[]') AS clips,
          COALESCE((
            SELECT json_agg(json_build_object('groupId', g.id, 'order', g."order") ORDER BY g."order", g.created_at, g.id)
            FROM video_mixer_groups g
            WHERE g.project_id = ${projectId}
          ), '[]') AS groups`).pipe(Effect.map((rows) => rows[0]!), Effect.orDie)

    const estimate = Effect.fn("VideoMixer.estimate")(function*(userId: string, request: MixRequest) {
      yield* checkTotal(request.totalVideos)
      const project = yield* ownedProject(userId, request.projectId)
      const { clips, groups } = yield* snapshot(project.id)
      return estimateMix({
        clips,
        groupIds: groups.map((g) => g.groupId),
        settings: request.settings,
        totalVideos: request.totalVideos,
        creditCostPerVideo: creditCostPerOutput(request.settings)
      })
    })

    /**
     * Accepts a generation: checks the request against the project (it has videos; a fixed start video
     * is one of them), then charges creditCostPerOutput x totalVideos and enqueues it in one
     * transaction (Generations.create), with the clip snapshot in its settings. The project's row lock
     * is held throughout, so a video delete cannot slip between the snapshot and the commit.
     */
    const generate = Effect.fn("VideoMixer.generate")(function*(userId: string, request: MixRequest) {
      yield* checkTotal(request.totalVideos)
      const perOutput = creditCostPerOutput(request.settings)
      // The hot write: its statements go through LeanSql (services/platform/LeanSql.ts).
      const generation = yield* lean.transaction(Effect.gen(function*() {
        const project = yield* ownedProject(userId, request.projectId, true)
        const { clips, groups } = yield* snapshot(project.id)
        if (clips.length === 0) {
          return yield* new ValidationError({ message: "The project has no videos: upload at least one first", field: "projectId" })
        }
        const start = request.settings.fixedStartVideoId
        if (start !== undefined && !clips.some((c) => c.videoId.toLowerCase() === start.toLowerCase())) {
          return yield* new ValidationError({
            message: "fixedStartVideoId must be a video of this project",
            field: "settings.fixedStartVideoId"
          })
        }
        const settings: MixJobSettings = {
          ...request.settings,
          ...(start === undefined ? {} : { fixedStartVideoId: clips.find((c) => c.videoId.toLowerCase() === start.toLowerCase())!.videoId }),
          clips,
          groups
        }
        return yield* generations.create({
          userId,
          app: APP,
          projectId: project.id,
          units: request.totalVideos,
          cost: perOutput * request.totalVideos,
          settings
        })
      })).pipe(Effect.catchTag("SqlError", Effect.die))
      return {
        generation: fromGeneration(generation, generation.projectId ?? request.projectId),
        /** What was stored as the generation's settings, typed (its answer needs no decode of them). */
        settings: generation.settings as MixJobSettings,
        creditUsed: generation.charged,
        creditBalance: generation.balance
      }
    })

    // ---- generations and their outputs

    const listGenerations = Effect.fn("VideoMixer.listGenerations")(function*(userId: string, projectId: string) {
      const project = yield* ownedProject(userId, projectId)
      const rows = yield* sql<GenerationRow>`
        SELECT * FROM generations WHERE project_id = ${project.id} AND user_id = ${userId} AND app = ${APP}
        ORDER BY created_at DESC, id DESC`.pipe(Effect.orDie)
      return rows.map(toGeneration)
    })

    const ownedGeneration = (userId: string, id: string) =>
      Effect.gen(function*() {
        const rows = UUID.test(id)
          ? yield* sql<GenerationRow>`
            SELECT * FROM generations WHERE id = ${id} AND user_id = ${userId} AND app = ${APP}`.pipe(Effect.orDie)
          : []
        const row = rows[0]
        if (row === undefined) return yield* generationNotFound()
        return toGeneration(row)
      })

    /** The delivered outputs of the caller's generation; 409 until it is completed or partial. */
    const outputs = Effect.fn("VideoMixer.outputs")(function*(userId: string, generationId: string) {
      const generation = yield* ownedGeneration(userId, generationId)
      if (generation.status !== "completed" && generation.status !== "partial") {
        return yield* new OutputsNotReady({
          message: `The generation is ${generation.status}: it has no videos to download`,
          generationStatus: generation.status
        })
      }
      return generation.outputs
    })

    const output = Effect.fn("VideoMixer.output")(function*(userId: string, generationId: string, index: number) {
      const all = yield* outputs(userId, generationId)
      const found = all[index]
      if (found === undefined) {
        return yield* new OutputNotFound({ message: `The generation has ${all.length} videos (index from 0)`, outputCount: all.length })
      }
      return found
    })

    const stats = Effect.fn("VideoMixer.stats")(function*(userId: string) {
      const rows = yield* sql<{ projects: number; videos: number; generations: number }>`
        SELECT (SELECT count(*)::integer FROM video_mixer_projects WHERE user_id = ${userId}) AS projects,
               (SELECT count(*)::integer FROM video_mixer_videos v JOIN video_mixer_projects p ON p.id = v.project_id
                WHERE p.user_id = ${userId}) AS videos,
               (SELECT count(*)::integer FROM generations WHERE user_id = ${userId} AND app = ${APP}) AS generations`.pipe(Effect.orDie)
      const row = rows[0]!
      return { totalProjects: row.projects, totalVideos: row.videos, totalGenerations: row.generations }
    })

    return {
      listProjects,
      createProject,
      getProject,
      updateProject,
      deleteProject,
      createGroup,
      listGroups,
      deleteGroup,
      checkUploadTarget,
      addVideo,
      listVideos,
      moveVideo,
      deleteVideo,
      estimate,
      generate,
      listGenerations,
      outputs,
      output,
      stats
    } as const
  })
}) {}
