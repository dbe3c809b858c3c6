import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Video Mixer's projects, their groups and their source videos (services/videoMixer/VideoMixer.ts).
 * - A video is an upload (the file, its size in the quota) placed in a project: deleting the upload
 *   deletes the placement; deleting the project deletes its placements (the service removes the
 *   uploads first, so their quota is released).
 * - A video's group must be of the same project: the composite key makes that a constraint, and a
 *   deleted group leaves its videos ungrouped (SET NULL of group_id only).
 * - Generations keep `project_id` (table generations, 0006); a project's are removed with it.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE video_mixer_projects (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
      description text CHECK (char_length(description) <= 500),
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`
  yield* sql`CREATE INDEX video_mixer_projects_user ON video_mixer_projects (user_id, created_at DESC)`
  yield* sql`
    CREATE TABLE video_mixer_groups (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      project_id uuid NOT NULL REFERENCES video_mixer_projects (id) ON DELETE CASCADE,
      name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
      "order" integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      UNIQUE (id, project_id)
    )`
  yield* sql`CREATE INDEX video_mixer_groups_project ON video_mixer_groups (project_id, "order", created_at)`
  yield* sql`
    CREATE TABLE video_mixer_videos (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      project_id uuid NOT NULL REFERENCES video_mixer_projects (id) ON DELETE CASCADE,
      group_id uuid,
      upload_id uuid NOT NULL UNIQUE REFERENCES uploads (id) ON DELETE CASCADE,
      "order" integer NOT NULL DEFAULT 0,
      file_name text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      FOREIGN KEY (group_id, project_id) REFERENCES video_mixer_groups (id, project_id) ON DELETE SET NULL (group_id)
    )`
  yield* sql`CREATE INDEX video_mixer_videos_project ON video_mixer_videos (project_id, "order", created_at)`
  yield* sql`CREATE INDEX generations_project ON generations (project_id) WHERE project_id IS NOT NULL`
})
