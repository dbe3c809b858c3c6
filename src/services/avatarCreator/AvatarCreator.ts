import { randomUUID } from "node:crypto"
import type { Multipart } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Chunk, Effect, ParseResult, Schema, Stream } from "effect"
import { ENTERPRISE_UNLIMITED, Ledger } from "../credits/Ledger.js"
import { type GenerationStatus, Generations } from "../generations/Generations.js"
import { ImageGenerationNotConfigured, ImageGenerator } from "../images/ImageGenerator.js"
import { type ImageUnreadable, thumbnailOf } from "../images/imageFiles.js"
import type { ImageFormat } from "../images/ImageGenerator.js"
import { ValidationError } from "../platform/DomainError.js"
import { Storage } from "../platform/Storage.js"
import { Uploads } from "../uploads/Uploads.js"
import { AVATAR_COSTS, AVATAR_MAX_SIDE, AVATAR_MIN_SIDE, avatarCreatorApp } from "./AvatarCreatorApp.js"
import { AvatarGenerationNotFound, AvatarNotFound, PresetNotFound, ProjectNotFound } from "./AvatarError.js"
import {
  type AvatarGenerationSettings,
  type AvatarTraits,
  type GenerateAvatar,
  type PresetCategory,
  UPLOAD_FIELDS,
  UploadFields,
  type UpdateAvatar
} from "./avatarFields.js"
import { type AvatarRow, avatarItem, VISIBLE } from "./avatarRows.js"

interface ProjectRow {
  readonly id: string
  readonly name: string
  readonly description: string | null
  readonly created_at: Date
  readonly updated_at: Date
}

interface PresetRow {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly category: PresetCategory
  readonly prompt: string
  readonly gender: string | null
  readonly age_range: string | null
  readonly style: string | null
  readonly usage_count: number
}

const presetItem = (row: PresetRow) => ({
  id: row.id,
  name: row.name,
  description: row.description,
  category: row.category,
  prompt: row.prompt,
  gender: row.gender,
  ageRange: row.age_range,
  style: row.style,
  // No preview pictures ship with the seeded presets.
  imageUrl: null,
  thumbnailUrl: null,
  usageCount: row.usage_count
})

const FORMAT_BY_MIME: Readonly<Record<string, ImageFormat>> = { "image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp" }
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const decodeUploadFields = Schema.decodeUnknown(UploadFields, { errors: "first", onExcessProperty: "error" })

/** The first problem of a decode failure, with its path: `personaAge: personaAge must be...`. */
const firstIssue = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  return issue === undefined ? "invalid" : `${issue.path.join(".") || "fields"}: ${issue.message}`.slice(0, 200)
}

/** The traits as columns, for an UPDATE that changes only what was sent (undefined keeps, null clears). */
const traitColumns = (traits: AvatarTraits): Record<string, unknown> => {
  const columns: Record<string, unknown> = {}
  if (traits.gender !== undefined) columns["gender"] = traits.gender
  if (traits.ageRange !== undefined) columns["age_range"] = traits.ageRange
  if (traits.style !== undefined) columns["style"] = traits.style
  if (traits.ethnicity !== undefined) columns["ethnicity"] = traits.ethnicity
  if (traits.personaName !== undefined) columns["persona_name"] = traits.personaName
  if (traits.personaAge !== undefined) columns["persona_age"] = traits.personaAge
  if (traits.personaPersonality !== undefined) columns["persona_personality"] = JSON.stringify(traits.personaPersonality)
  if (traits.personaBackground !== undefined) columns["persona_background"] = traits.personaBackground
  return columns
}

/**
 * Avatar Creator: projects, avatars (uploaded or generated) with persona and attributes, presets,
 * usage history. Uploads go through the one upload pipeline (typed by magic bytes, sides checked from
 * the header before decoding, re-encoded without metadata) and are charged in the transaction that
 * records the avatar; generations go through the one generation flow (row, charge and enqueue in one
 * transaction; refunded by the job's compensation when it fails for good). Every id is the caller's
 * or answers 404.
 */
export class AvatarCreator extends Effect.Service<AvatarCreator>()("app/AvatarCreator", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ledger = yield* Ledger
    const generations = yield* Generations
    const uploads = yield* Uploads
    const storage = yield* Storage
    const generator = yield* ImageGenerator

    const noProject = () => new ProjectNotFound({ message: "No such project" })
    const noAvatar = () => new AvatarNotFound({ message: "No such avatar" })

    const visibleAvatars = (where: { readonly userId: string } | { readonly projectId: string }) =>
      sql<AvatarRow>`
        SELECT a.* FROM avatars a
        WHERE ${"userId" in where ? sql`a.user_id = ${where.userId}` : sql`a.project_id = ${where.projectId}`} AND ${sql.unsafe(VISIBLE)}
        ORDER BY a.created_at DESC, a.id DESC`

    const ownedProject = (userId: string, id: string) =>
      Effect.gen(function*() {
        const rows = yield* sql<ProjectRow>`SELECT * FROM avatar_projects WHERE id = ${id} AND user_id = ${userId}`
        const row = rows[0]
        if (row === undefined) return yield* noProject()
        return row
      })

    const ownedAvatar = (userId: string, id: string) =>
      Effect.gen(function*() {
        const rows = yield* sql<AvatarRow>`SELECT a.* FROM avatars a WHERE a.id = ${id} AND a.user_id = ${userId} AND ${sql.unsafe(VISIBLE)}`
        const row = rows[0]
        if (row === undefined) return yield* noAvatar()
        return row
      })

    const projectItem = (row: ProjectRow, avatars: ReadonlyArray<AvatarRow>) => ({
      id: row.id,
      name: row.name,
      description: row.description,
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
      avatars: avatars.map(avatarItem)
    })

    const listProjects = Effect.fn("AvatarCreator.listProjects")(function*(userId: string) {
      const projects = yield* sql<ProjectRow>`SELECT * FROM avatar_projects WHERE user_id = ${userId} ORDER BY updated_at DESC, id DESC`
      const avatars = yield* visibleAvatars({ userId })
      return projects.map((project) => projectItem(project, avatars.filter((a) => a.project_id === project.id)))
    }, Effect.orDie)

    const getProject = Effect.fn("AvatarCreator.getProject")(function*(userId: string, id: string) {
      const project = yield* ownedProject(userId, id)
      return projectItem(project, yield* visibleAvatars({ projectId: id }))
    }, Effect.catchTag("SqlError", Effect.die))

    const createProject = Effect.fn("AvatarCreator.createProject")(function*(
      userId: string,
      input: { readonly name: string; readonly description?: string | null | undefined }
    ) {
      const rows = yield* sql<ProjectRow>`
        INSERT INTO avatar_projects (user_id, name, description) VALUES (${userId}, ${input.name}, ${input.description ?? null})
        RETURNING *`
      return projectItem(rows[0]!, [])
    }, Effect.orDie)

    const updateProject = Effect.fn("AvatarCreator.updateProject")(function*(
      userId: string,
      id: string,
      input: { readonly name?: string | undefined; readonly description?: string | null | undefined }
    ) {
      const changes: Record<string, unknown> = {}
      if (input.name !== undefined) changes["name"] = input.name
      if (input.description !== undefined) changes["description"] = input.description
      const rows = Object.keys(changes).length === 0
        ? yield* sql<ProjectRow>`SELECT * FROM avatar_projects WHERE id = ${id} AND user_id = ${userId}`
        : yield* sql<ProjectRow>`
          UPDATE avatar_projects SET ${sql.update(changes)}, updated_at = now() WHERE id = ${id} AND user_id = ${userId} RETURNING *`
      const row = rows[0]
      if (row === undefined) return yield* noProject()
      return projectItem(row, yield* visibleAvatars({ projectId: id }))
    }, Effect.catchTag("SqlError", Effect.die))

    /** An avatar's pictures leave storage; an uploaded one's upload goes too (releasing its quota). */
    const removePictures = (row: AvatarRow) =>
      Effect.gen(function*() {
        yield* storage.delete(row.thumbnail_key).pipe(Effect.ignoreLogged)
        if (row.upload_id !== null) {
          yield* uploads.remove(row.user_id, row.upload_id).pipe(Effect.catchTag("UploadNotFound", () => Effect.void))
        } else {
          yield* storage.delete(row.image_key).pipe(Effect.ignoreLogged)
        }
      })

    const deleteProject = Effect.fn("AvatarCreator.deleteProject")(function*(userId: string, id: string) {
      yield* ownedProject(userId, id)
      // Every avatar of the project, shown or not (a generated one whose generation has not completed).
      const avatars = yield* sql<AvatarRow>`SELECT * FROM avatars WHERE project_id = ${id} AND user_id = ${userId}`
      yield* Effect.forEach(avatars, removePictures, { discard: true })
      yield* sql`DELETE FROM avatar_projects WHERE id = ${id} AND user_id = ${userId}`
    }, Effect.catchTag("SqlError", Effect.die))

    const listAvatars = Effect.fn("AvatarCreator.listAvatars")(function*(userId: string) {
      return (yield* visibleAvatars({ userId })).map(avatarItem)
    }, Effect.orDie)

    const getAvatar = Effect.fn("AvatarCreator.getAvatar")(function*(userId: string, id: string) {
      return avatarItem(yield* ownedAvatar(userId, id))
    }, Effect.catchTag("SqlError", Effect.die))

    /** The row, for serving its pictures. */
    const avatarFile = Effect.fn("AvatarCreator.avatarFile")(function*(userId: string, id: string, which: "image" | "thumbnail") {
      const row = yield* ownedAvatar(userId, id)
      const key = which === "image" ? row.image_key : row.thumbnail_key
      const size = which === "image" ? Number(row.image_size) : Number(row.thumbnail_size)
      return { storageKey: key, size, mime: row.image_mime, extension: row.image_extension, name: which === "image" ? row.name : `${row.name} thumbnail` }
    }, Effect.catchTag("SqlError", Effect.die))

    const updateAvatar = Effect.fn("AvatarCreator.updateAvatar")(function*(userId: string, id: string, input: UpdateAvatar) {
      yield* ownedAvatar(userId, id)
      const changes = traitColumns(input)
      if (input.name !== undefined) changes["name"] = input.name
      if (Object.keys(changes).length > 0) {
        yield* sql`UPDATE avatars SET ${sql.update(changes)}, updated_at = now() WHERE id = ${id} AND user_id = ${userId}`
      }
      return avatarItem(yield* ownedAvatar(userId, id))
    }, Effect.catchTag("SqlError", Effect.die))

    const deleteAvatar = Effect.fn("AvatarCreator.deleteAvatar")(function*(userId: string, id: string) {
      const row = yield* ownedAvatar(userId, id)
      yield* removePictures(row)
      yield* sql`DELETE FROM avatars WHERE id = ${id} AND user_id = ${userId}`
    }, Effect.catchTag("SqlError", Effect.die))

    const usageHistory = Effect.fn("AvatarCreator.usageHistory")(function*(userId: string, id: string) {
      const avatar = yield* ownedAvatar(userId, id)
      const rows = yield* sql<{ id: string; app_id: string; action: string; reference_id: string | null; created_at: Date }>`
        SELECT * FROM avatar_usage_history WHERE avatar_id = ${id} AND user_id = ${userId} ORDER BY created_at DESC, id DESC LIMIT 100`
      const byApp: Record<string, number> = {}
      for (const row of rows) byApp[row.app_id] = (byApp[row.app_id] ?? 0) + 1
      return {
        history: rows.map((row) => ({
          id: String(row.id),
          appId: row.app_id,
          action: row.action,
          referenceId: row.reference_id,
          createdAt: row.created_at.toISOString()
        })),
        summary: {
          totalUsage: avatar.usage_count,
          byApp: Object.entries(byApp).map(([appId, count]) => ({ appId, count })),
          lastUsedAt: avatar.last_used_at === null ? null : avatar.last_used_at.toISOString()
        }
      }
    }, Effect.catchTag("SqlError", Effect.die))

    const presets = Effect.fn("AvatarCreator.presets")(function*(category: PresetCategory | undefined) {
      const where = category === undefined ? sql`` : sql`WHERE category = ${category}`
      return (yield* sql<PresetRow>`SELECT * FROM avatar_presets ${where} ORDER BY sort_order, name`).map(presetItem)
    }, Effect.orDie)

    const findPreset = (id: string) =>
      Effect.gen(function*() {
        const row = (yield* sql<PresetRow>`SELECT * FROM avatar_presets WHERE id = ${id}`)[0]
        if (row === undefined) return yield* new PresetNotFound({ message: "No such preset" })
        return row
      })

    const preset = Effect.fn("AvatarCreator.preset")(function*(id: string) {
      return presetItem(yield* findPreset(id))
    }, Effect.catchTag("SqlError", Effect.die))

    /**
     * Upload of an avatar picture: the fields and the project are checked before anything is stored,
     * the picture goes through the upload pipeline (256-4096 px a side from its header, re-encoded),
     * its thumbnail is made, then the charge (2 credits, 0 for an enterprise user, keyed by the new
     * avatar's id) and the avatar row commit together. Any failure after the store removes the upload
     * and the thumbnail: nothing charged, nothing left.
     */
    const upload = Effect.fn("AvatarCreator.upload")(function*(input: {
      readonly userId: string
      readonly projectId: string
      readonly parts: Stream.Stream<Multipart.Part, Multipart.MultipartError>
      readonly declaredBytes?: number | undefined
    }) {
      const { userId, projectId } = input
      let fields: typeof UploadFields.Type | undefined
      const received = yield* uploads.receive({
        userId,
        kind: "image",
        parts: input.parts,
        declaredBytes: input.declaredBytes,
        fileField: "image",
        fields: UPLOAD_FIELDS,
        image: { minSide: AVATAR_MIN_SIDE, maxSide: AVATAR_MAX_SIDE },
        beforeStore: (raw) =>
          Effect.gen(function*() {
            yield* ownedProject(userId, projectId).pipe(Effect.catchTag("SqlError", Effect.die))
            fields = yield* decodeUploadFields(raw).pipe(
              Effect.mapError((error) => new ValidationError({ message: `Invalid upload fields: ${firstIssue(error)}` }))
            )
          })
      })
      const decoded = fields
      // beforeStore ran (a file was stored): the fields decoded.
      if (decoded === undefined) return yield* Effect.dieMessage("upload stored without its fields")
      const { upload: stored } = received
      const avatarId = randomUUID()
      const format = FORMAT_BY_MIME[stored.mime] ?? "png"
      const thumbnailKey = `avatars/${userId}/${avatarId}-thumb.${stored.extension}`
      const undo = Effect.uninterruptible(Effect.all([
        storage.delete(thumbnailKey).pipe(Effect.ignoreLogged),
        uploads.remove(userId, stored.id).pipe(Effect.ignoreLogged)
      ], { discard: true }))
      return yield* Effect.gen(function*() {
        const body = yield* storage.get(stored.storageKey).pipe(Effect.orDie)
        const bytes = Buffer.concat(Chunk.toReadonlyArray(yield* Stream.runCollect(body).pipe(Effect.orDie)))
        const thumbnail = yield* thumbnailOf(bytes, format, AVATAR_MAX_SIDE * AVATAR_MAX_SIDE).pipe(
          Effect.catchTag("ImageUnreadable", (error: ImageUnreadable) => Effect.die(error))
        )
        const thumb = yield* storage.put(thumbnailKey, Stream.make(new Uint8Array(thumbnail)), { contentType: stored.mime }).pipe(Effect.orDie)
        const { row, charged } = yield* ledger.transaction(Effect.gen(function*() {
          const charge = yield* ledger.debit({
            userId,
            amount: AVATAR_COSTS.upload,
            key: `avatar-upload:${avatarId}`,
            reason: "Avatar Creator: avatar upload",
            reference: `avatar:${avatarId}`
          })
          const rows = yield* sql<AvatarRow>`
            INSERT INTO avatars (id, user_id, project_id, name, source_type, image_key, image_mime, image_extension, image_size,
                                 thumbnail_key, thumbnail_size, upload_id, gender, age_range, style, ethnicity, persona_name,
                                 persona_age, persona_personality, persona_background)
            VALUES (${avatarId}, ${userId}, ${projectId}, ${decoded.name}, 'uploaded', ${stored.storageKey}, ${stored.mime},
                    ${stored.extension}, ${stored.size}, ${thumbnailKey}, ${thumb.size}, ${stored.id}, ${decoded.gender ?? null},
                    ${decoded.ageRange ?? null}, ${decoded.style ?? null}, ${decoded.ethnicity ?? null}, ${decoded.personaName ?? null},
                    ${decoded.personaAge ?? null}, ${JSON.stringify(decoded.personaPersonality ?? [])}::jsonb,
                    ${decoded.personaBackground ?? null})
            RETURNING *`
          yield* sql`UPDATE avatar_projects SET updated_at = now() WHERE id = ${projectId}`
          return { row: rows[0]!, charged: -charge.delta }
        }))
        return { avatar: avatarItem(row), creditUsed: charged, creditBalance: yield* ledger.balance(userId) }
      }).pipe(
        Effect.onError(() => undo),
        // None can happen: a fresh key, a positive amount, the caller's own (authenticated) account.
        Effect.catchTags({ InvalidAmount: Effect.die, IdempotencyKeyReused: Effect.die, UserNotFound: Effect.die, SqlError: Effect.die })
      )
    })

    /**
     * Starts a generation: refused before any charge when no provider is configured (503), when the
     * project, preset or reference avatar is not the caller's (404); then the one generation flow.
     */
    const generate = Effect.fn("AvatarCreator.generate")(function*(
      userId: string,
      projectId: string,
      request:
        | { readonly mode: "text"; readonly input: GenerateAvatar }
        | { readonly mode: "preset"; readonly presetId: string; readonly customName?: string | undefined }
    ) {
      if (!generator.configured) {
        return yield* new ImageGenerationNotConfigured({ message: "image generation is not configured" })
      }
      yield* ownedProject(userId, projectId)
      let settings: AvatarGenerationSettings
      let cost: number
      let seed: number | undefined
      if (request.mode === "preset") {
        const found = yield* findPreset(request.presetId)
        cost = AVATAR_COSTS.preset
        settings = {
          mode: "preset",
          prompt: found.prompt,
          name: request.customName ?? found.name,
          width: 1024,
          height: 1024,
          presetId: found.id,
          referenceAvatarId: null,
          traits: { gender: found.gender ?? undefined, ageRange: found.age_range ?? undefined, style: found.style ?? undefined }
        }
      } else {
        const { prompt, name, width, height, referenceAvatarId, seed: chosen, ...traits } = request.input
        if (referenceAvatarId !== undefined) {
          if (!generator.referenceConfigured) {
            return yield* new ImageGenerationNotConfigured({ message: "image generation from a reference is not configured" })
          }
          yield* ownedAvatar(userId, referenceAvatarId)
        }
        cost = referenceAvatarId === undefined ? AVATAR_COSTS.generate : AVATAR_COSTS.reference
        seed = chosen
        settings = {
          mode: referenceAvatarId === undefined ? "text" : "reference",
          prompt,
          name,
          width: width ?? 1024,
          height: height ?? 1024,
          presetId: null,
          referenceAvatarId: referenceAvatarId ?? null,
          traits
        }
      }
      const generation = yield* generations.create({
        userId,
        app: avatarCreatorApp.appId,
        projectId,
        units: 1,
        cost,
        settings,
        seed
      })
      if (settings.presetId !== null) yield* sql`UPDATE avatar_presets SET usage_count = usage_count + 1 WHERE id = ${settings.presetId}`
      if (settings.referenceAvatarId !== null) {
        yield* sql`
          UPDATE avatars SET usage_count = usage_count + 1, last_used_at = now() WHERE id = ${settings.referenceAvatarId}`
        yield* sql`
          INSERT INTO avatar_usage_history (avatar_id, user_id, app_id, action, reference_id)
          VALUES (${settings.referenceAvatarId}, ${userId}, ${avatarCreatorApp.appId}, 'reference', ${generation.id})`
      }
      return {
        generation: {
          id: generation.id,
          status: generation.status,
          prompt: settings.prompt,
          projectId,
          avatarId: null,
          errorMessage: null,
          progress: generation.progress,
          creditUsed: generation.charged,
          createdAt: generation.createdAt.toISOString(),
          completedAt: null
        },
        creditUsed: generation.charged,
        creditBalance: generation.balance
      }
    }, Effect.catchTags({ SqlError: Effect.die }))

    const generation = Effect.fn("AvatarCreator.generation")(function*(userId: string, id: string) {
      if (!UUID.test(id)) return yield* new AvatarGenerationNotFound({ message: "No such generation" })
      const rows = yield* sql<{
        id: string
        status: GenerationStatus
        settings: { readonly prompt?: string }
        project_id: string | null
        avatar_id: string | null
        error_message: string | null
        progress: number
        charged: string
        created_at: Date
        completed_at: Date | null
      }>`
        SELECT g.*, a.id AS avatar_id FROM generations g
        LEFT JOIN avatars a ON a.generation_id = g.id AND g.status = 'completed'
        WHERE g.id = ${id} AND g.user_id = ${userId} AND g.app = ${avatarCreatorApp.appId}`
      const row = rows[0]
      if (row === undefined) return yield* new AvatarGenerationNotFound({ message: "No such generation" })
      return {
        id: row.id,
        status: row.status,
        prompt: row.settings.prompt ?? null,
        projectId: row.project_id,
        avatarId: row.avatar_id,
        errorMessage: row.error_message,
        progress: row.progress,
        creditUsed: Number(row.charged),
        createdAt: row.created_at.toISOString(),
        completedAt: row.completed_at === null ? null : row.completed_at.toISOString()
      }
    }, Effect.catchTag("SqlError", Effect.die))

    const stats = Effect.fn("AvatarCreator.stats")(function*(userId: string) {
      const rows = yield* sql<{ tags: ReadonlyArray<string>; projects: string; avatars: string }>`
        SELECT u.tags,
               (SELECT count(*) FROM avatar_projects WHERE user_id = u.id) AS projects,
               (SELECT count(*) FROM avatars a WHERE a.user_id = u.id AND ${sql.unsafe(VISIBLE)}) AS avatars
        FROM users u WHERE u.id = ${userId}`
      const row = rows[0]
      return {
        balance: yield* ledger.balance(userId),
        isEnterprise: row?.tags.includes(ENTERPRISE_UNLIMITED) ?? false,
        costs: AVATAR_COSTS,
        totalProjects: Number(row?.projects ?? 0),
        totalAvatars: Number(row?.avatars ?? 0),
        imageGenerationConfigured: generator.configured
      }
    }, Effect.orDie)

    return {
      listProjects,
      getProject,
      createProject,
      updateProject,
      deleteProject,
      listAvatars,
      getAvatar,
      avatarFile,
      updateAvatar,
      deleteAvatar,
      usageHistory,
      presets,
      preset,
      upload,
      generate,
      generation,
      stats,
      configured: generator.configured
    } as const
  })
}) {}
