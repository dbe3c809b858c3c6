import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { AvatarTraits, SourceType } from "./avatarFields.js"

export interface AvatarRow {
  readonly id: string
  readonly user_id: string
  readonly project_id: string
  readonly name: string
  readonly source_type: SourceType
  readonly image_key: string
  readonly image_mime: string
  readonly image_extension: string
  readonly image_size: string
  readonly thumbnail_key: string
  readonly thumbnail_size: string
  readonly upload_id: string | null
  readonly generation_id: string | null
  readonly preset_id: string | null
  readonly generation_prompt: string | null
  readonly gender: string | null
  readonly age_range: string | null
  readonly style: string | null
  readonly ethnicity: string | null
  readonly persona_name: string | null
  readonly persona_age: number | null
  readonly persona_personality: ReadonlyArray<string>
  readonly persona_background: string | null
  readonly usage_count: number
  readonly last_used_at: Date | null
  readonly created_at: Date
  readonly updated_at: Date
}

/** Where the web app fetches an avatar's pictures: the private download path, owner only. */
export const imagePath = (id: string) => `/api/apps/avatar-creator/avatars/${id}/image`
export const thumbnailPath = (id: string) => `/api/apps/avatar-creator/avatars/${id}/thumbnail`

/** The web app's avatar shape (frontend contract 2.7). */
export const avatarItem = (row: AvatarRow) => ({
  id: row.id,
  projectId: row.project_id,
  name: row.name,
  baseImageUrl: imagePath(row.id),
  thumbnailUrl: thumbnailPath(row.id),
  sourceType: row.source_type,
  gender: row.gender,
  ageRange: row.age_range,
  style: row.style,
  ethnicity: row.ethnicity,
  personaName: row.persona_name,
  personaAge: row.persona_age,
  personaPersonality: row.persona_personality,
  personaBackground: row.persona_background,
  generationPrompt: row.generation_prompt,
  presetId: row.preset_id,
  usageCount: row.usage_count,
  lastUsedAt: row.last_used_at === null ? null : row.last_used_at.toISOString(),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})
export type AvatarItem = ReturnType<typeof avatarItem>

/** A generated avatar is shown once its generation completed; an uploaded one at once. */
export const VISIBLE = "(a.generation_id IS NULL OR EXISTS (SELECT 1 FROM generations g WHERE g.id = a.generation_id AND g.status = 'completed'))"

export interface StoredPicture {
  readonly imageKey: string
  readonly mime: string
  readonly extension: string
  readonly imageSize: number
  readonly thumbnailKey: string
  readonly thumbnailSize: number
}

/**
 * The avatar of a generation, written by its job before the generation completes (it is invisible
 * until then): one row per generation, so a retried attempt replaces the row's pictures. False when
 * the project is gone (deleted while the job waited).
 */
export const recordGeneratedAvatar = (input: {
  readonly generationId: string
  readonly userId: string
  readonly projectId: string
  readonly name: string
  readonly sourceType: SourceType
  readonly prompt: string
  readonly presetId: string | null
  readonly traits: AvatarTraits
  readonly picture: StoredPicture
}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { picture, traits } = input
    const rows = yield* sql<{ id: string }>`
      INSERT INTO avatars (user_id, project_id, name, source_type, image_key, image_mime, image_extension, image_size,
                           thumbnail_key, thumbnail_size, generation_id, preset_id, generation_prompt, gender, age_range, style,
                           ethnicity, persona_name, persona_age, persona_personality, persona_background)
      SELECT ${input.userId}, p.id, ${input.name}, ${input.sourceType}, ${picture.imageKey}, ${picture.mime}, ${picture.extension},
             ${picture.imageSize}, ${picture.thumbnailKey}, ${picture.thumbnailSize}, ${input.generationId},
             (SELECT id FROM avatar_presets WHERE id = ${input.presetId}::uuid), ${input.prompt},
             ${traits.gender ?? null}, ${traits.ageRange ?? null}, ${traits.style ?? null}, ${traits.ethnicity ?? null},
             ${traits.personaName ?? null}, ${traits.personaAge ?? null}, ${JSON.stringify(traits.personaPersonality ?? [])}::jsonb,
             ${traits.personaBackground ?? null}
      FROM avatar_projects p WHERE p.id = ${input.projectId} AND p.user_id = ${input.userId}
      ON CONFLICT (generation_id) DO UPDATE
        SET image_key = EXCLUDED.image_key, image_mime = EXCLUDED.image_mime, image_extension = EXCLUDED.image_extension,
            image_size = EXCLUDED.image_size, thumbnail_key = EXCLUDED.thumbnail_key, thumbnail_size = EXCLUDED.thumbnail_size,
            updated_at = now()
      RETURNING id`
    return rows.length > 0
  })

/** The stored picture of the user's avatar (a reference for another generation), if it still exists. */
export const referenceImageKey = (userId: string, avatarId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ image_key: string }>`SELECT image_key FROM avatars WHERE id = ${avatarId} AND user_id = ${userId}`
    return rows[0]?.image_key
  })
