import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * Avatar Creator. Every id is a UUID (the old presets' cuids failed a UUID check, so no preset could
 * ever be used): one format, one validation.
 * - avatar_projects: a user's named folders of avatars.
 * - avatars: one picture (image and 300x300 thumbnail in storage) with persona and attributes. An
 *   uploaded one points at its upload (the file and its quota are the upload pipeline's); a generated
 *   one at its generation, and is shown only once that generation completed (a cancelled or failed
 *   one's row is never visible, and goes with the generation).
 * - avatar_presets: the preset catalogue by category, seeded below with real prompts.
 * - avatar_usage_history: where an avatar was used (another generation took it as a reference).
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE avatar_projects (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
      description text CHECK (char_length(description) <= 500),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX avatar_projects_user_updated ON avatar_projects (user_id, updated_at DESC)`
  yield* sql`
    CREATE TABLE avatar_presets (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL,
      description text NOT NULL,
      category text NOT NULL CHECK (category IN ('professional', 'casual', 'sports', 'fashion', 'traditional')),
      prompt text NOT NULL,
      gender text CHECK (gender IN ('male', 'female', 'unisex')),
      age_range text CHECK (age_range IN ('young', 'adult', 'mature')),
      style text,
      sort_order integer NOT NULL DEFAULT 0,
      usage_count integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE avatars (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      project_id uuid NOT NULL REFERENCES avatar_projects (id) ON DELETE CASCADE,
      name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
      source_type text NOT NULL CHECK (source_type IN ('uploaded', 'text_to_image', 'from_preset', 'from_reference')),
      image_key text NOT NULL,
      image_mime text NOT NULL,
      image_extension text NOT NULL,
      image_size bigint NOT NULL,
      thumbnail_key text NOT NULL,
      thumbnail_size bigint NOT NULL,
      upload_id uuid UNIQUE REFERENCES uploads (id) ON DELETE CASCADE,
      generation_id uuid UNIQUE REFERENCES generations (id) ON DELETE CASCADE,
      preset_id uuid REFERENCES avatar_presets (id) ON DELETE SET NULL,
      generation_prompt text,
      gender text CHECK (gender IN ('male', 'female', 'unisex')),
      age_range text CHECK (age_range IN ('young', 'adult', 'mature')),
      style text,
      ethnicity text,
      persona_name text,
      persona_age integer CHECK (persona_age BETWEEN 1 AND 120),
      persona_personality jsonb NOT NULL DEFAULT '[]',
      persona_background text,
      usage_count integer NOT NULL DEFAULT 0,
      last_used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((source_type = 'uploaded') = (upload_id IS NOT NULL) AND (source_type = 'uploaded') <> (generation_id IS NOT NULL))
    )`
  yield* sql`CREATE INDEX avatars_project_created ON avatars (project_id, created_at DESC)`
  yield* sql`CREATE INDEX avatars_user_created ON avatars (user_id, created_at DESC)`
  yield* sql`
    CREATE TABLE avatar_usage_history (
      id bigserial PRIMARY KEY,
      avatar_id uuid NOT NULL REFERENCES avatars (id) ON DELETE CASCADE,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      app_id text NOT NULL,
      action text NOT NULL,
      reference_id text,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX avatar_usage_history_avatar ON avatar_usage_history (avatar_id, created_at DESC)`

  const presets: ReadonlyArray<readonly [string, string, string, string, string, string, string]> = [
    [
      "Corporate Executive", "professional", "A confident executive headshot for LinkedIn and company pages", "unisex", "mature", "corporate",
      "professional corporate headshot of a confident executive in a tailored navy suit, soft studio lighting, neutral grey backdrop, sharp focus on the eyes, 85mm lens, high detail, photorealistic"
    ],
    [
      "Startup Founder", "professional", "Approachable smart-casual portrait for a pitch deck", "unisex", "adult", "smart casual",
      "portrait of a friendly startup founder in a smart casual blazer over a plain t-shirt, modern open-plan office softly blurred behind, natural window light, warm tones, photorealistic, shallow depth of field"
    ],
    [
      "Doctor", "professional", "Trustworthy medical professional in a clinic", "unisex", "adult", "medical",
      "portrait of a doctor in a crisp white coat with a stethoscope, bright clean clinic background, soft even lighting, calm reassuring expression, photorealistic, high detail"
    ],
    [
      "Weekend Coffee", "casual", "Relaxed portrait in a cosy cafe", "unisex", "young", "casual",
      "candid portrait of a young person in a knitted sweater holding a coffee cup in a cosy cafe, warm ambient light, bokeh background, natural smile, photorealistic, film look"
    ],
    [
      "Street Style", "casual", "Urban everyday look on a city street", "unisex", "young", "streetwear",
      "full upper-body portrait of a person in streetwear, denim jacket and hoodie, city street at golden hour behind, natural light, candid pose, photorealistic, vibrant colors"
    ],
    [
      "Marathon Runner", "sports", "Athlete mid-run on a city marathon course", "unisex", "adult", "athletic",
      "dynamic portrait of a marathon runner in technical running gear with a race bib, city course behind, motion, morning light, determined expression, sports photography, photorealistic"
    ],
    [
      "Football Player", "sports", "Player in kit on a stadium pitch", "male", "young", "athletic",
      "portrait of a football player in a team jersey on a green stadium pitch, floodlights, holding a ball under the arm, confident look, sports photography, photorealistic, high detail"
    ],
    [
      "Runway Model", "fashion", "High-fashion editorial look", "female", "young", "haute couture",
      "high fashion editorial portrait of a model in an avant-garde couture outfit, dramatic studio lighting, clean white backdrop, striking pose, magazine cover quality, photorealistic"
    ],
    [
      "Modest Fashion", "fashion", "Elegant modest wear with a hijab", "female", "adult", "modest",
      "elegant portrait of a woman in modern modest fashion with a pastel hijab and flowing layered outfit, soft daylight, minimalist boutique background, graceful pose, photorealistic"
    ],
    [
      "Batik Heritage", "traditional", "Indonesian batik attire", "unisex", "adult", "traditional",
      "portrait of a person wearing traditional Indonesian batik attire with intricate brown and indigo patterns, carved wooden Javanese background, warm natural light, dignified expression, photorealistic"
    ],
    [
      "Kebaya Ceremony", "traditional", "Traditional kebaya for a formal ceremony", "female", "adult", "traditional",
      "portrait of a woman in an embroidered Indonesian kebaya with a batik sarong and a traditional hair bun, ornate ceremonial setting, soft golden light, graceful expression, photorealistic"
    ]
  ]
  for (const [index, [name, category, description, gender, ageRange, style, prompt]] of presets.entries()) {
    yield* sql`
      INSERT INTO avatar_presets (name, description, category, prompt, gender, age_range, style, sort_order)
      VALUES (${name}, ${description}, ${category}, ${prompt}, ${gender}, ${ageRange}, ${style}, ${index})`
  }
})
