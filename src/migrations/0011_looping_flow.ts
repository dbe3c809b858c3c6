import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Looping Flow's projects and what they hold (services/loopingFlow/LoopingFlow.ts). Files are rows of
 * `uploads` (the shared pipeline: quota, storage key); deleting an upload removes its link here. A
 * generation is a `generations` row (app 'looping-flow', project_id) with its settings snapshot.
 * - looping_videos: the source videos of a project.
 * - looping_audio_layers: up to 4 audio layers (index 0-3) a generation of the project mixes in.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE looping_projects (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
      description text CHECK (char_length(description) <= 2000),
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`
  yield* sql`CREATE INDEX looping_projects_user_created ON looping_projects (user_id, created_at DESC, id DESC)`
  yield* sql`
    CREATE TABLE looping_videos (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      project_id uuid NOT NULL REFERENCES looping_projects (id) ON DELETE CASCADE,
      upload_id uuid NOT NULL UNIQUE REFERENCES uploads (id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`
  yield* sql`CREATE INDEX looping_videos_project ON looping_videos (project_id, created_at)`
  yield* sql`
    CREATE TABLE looping_audio_layers (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      project_id uuid NOT NULL REFERENCES looping_projects (id) ON DELETE CASCADE,
      upload_id uuid NOT NULL UNIQUE REFERENCES uploads (id) ON DELETE CASCADE,
      layer_index smallint NOT NULL CHECK (layer_index BETWEEN 0 AND 3),
      volume smallint NOT NULL DEFAULT 100 CHECK (volume BETWEEN 0 AND 100),
      muted boolean NOT NULL DEFAULT false,
      fade_in real NOT NULL DEFAULT 0 CHECK (fade_in BETWEEN 0 AND 10),
      fade_out real NOT NULL DEFAULT 0 CHECK (fade_out BETWEEN 0 AND 10),
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      UNIQUE (project_id, layer_index)
    )`
})
