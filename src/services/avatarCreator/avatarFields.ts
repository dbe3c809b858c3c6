import { Schema } from "effect"

/** Trimmed, with every run of whitespace made one space (names and prompts as the web app sends them). */
const Collapsed = Schema.transform(Schema.String, Schema.String, {
  strict: true,
  decode: (s) => s.trim().replace(/\s+/g, " "),
  encode: (s) => s
})

// Multipart fields do not pass the JSON screening of NUL bytes (Postgres cannot store one): refused here.
const bounded = (what: string, min: number, max: number) =>
  Collapsed.pipe(Schema.filter((s) =>
    s.includes("\u0000")
      ? `${what} must not contain a NUL character`
      : (s.length >= min && s.length <= max) || `${what} must be ${min === 0 ? "at most" : `${min} to`} ${max} characters`
  ))

export const ProjectName = bounded("name", 1, 100)
export const Description = bounded("description", 0, 500)
export const AvatarName = bounded("name", 1, 100)
export const Prompt = bounded("prompt", 10, 2000)
/** The other attributes (style, ethnicity): free text, 50 characters at most. */
export const Attribute = bounded("an attribute", 0, 50)
export const PersonaName = bounded("personaName", 0, 100)
export const PersonaBackground = bounded("personaBackground", 0, 500)
export const PersonaAge = Schema.Int.pipe(Schema.between(1, 120)).annotations({ message: () => "personaAge must be a whole number from 1 to 120" })
export const Personality = Schema.Array(bounded("a personality trait", 1, 50)).pipe(
  Schema.maxItems(10, { message: () => "personality takes at most 10 traits" })
)
export const Gender = Schema.Literal("male", "female", "unisex").annotations({ message: () => "gender must be one of male, female, unisex" })
export const AgeRange = Schema.Literal("young", "adult", "mature").annotations({ message: () => "ageRange must be one of young, adult, mature" })
export const PresetCategory = Schema.Literal("professional", "casual", "sports", "fashion", "traditional").annotations({
  message: () => "category must be one of professional, casual, sports, fashion, traditional"
})
export type PresetCategory = typeof PresetCategory.Type
export const SourceType = Schema.Literal("uploaded", "text_to_image", "from_preset", "from_reference")
export type SourceType = typeof SourceType.Type
const Dimension = Schema.Int.pipe(Schema.between(512, 2048)).annotations({ message: () => "width and height must be whole numbers from 512 to 2048" })

/** Every id of this app is a UUID, and is validated as one (the old presets' cuids never passed). */
export const Id = Schema.UUID.annotations({ message: () => "the id must be a UUID" })

/** The persona and attributes an avatar carries; every field optional, null clears it (on update). */
export const AvatarTraits = Schema.Struct({
  gender: Schema.optional(Schema.NullOr(Gender)),
  ageRange: Schema.optional(Schema.NullOr(AgeRange)),
  style: Schema.optional(Schema.NullOr(Attribute)),
  ethnicity: Schema.optional(Schema.NullOr(Attribute)),
  personaName: Schema.optional(Schema.NullOr(PersonaName)),
  personaAge: Schema.optional(Schema.NullOr(PersonaAge)),
  personaPersonality: Schema.optional(Personality),
  personaBackground: Schema.optional(Schema.NullOr(PersonaBackground))
})
export type AvatarTraits = typeof AvatarTraits.Type

export const CreateProject = Schema.Struct({ name: ProjectName, description: Schema.optional(Schema.NullOr(Description)) })
export const UpdateProject = Schema.Struct({ name: Schema.optional(ProjectName), description: Schema.optional(Schema.NullOr(Description)) })

export const GenerateAvatar = Schema.Struct({
  ...AvatarTraits.fields,
  prompt: Prompt,
  name: AvatarName,
  width: Schema.optional(Dimension),
  height: Schema.optional(Dimension),
  seed: Schema.optional(Schema.Int.pipe(Schema.between(0, 2 ** 31 - 1))),
  /** One of the caller's avatars: an image-to-image generation from it (12 credits instead of 10). */
  referenceAvatarId: Schema.optional(Id)
})
export type GenerateAvatar = typeof GenerateAvatar.Type

export const FromPreset = Schema.Struct({ presetId: Id, customName: Schema.optional(AvatarName) })

export const UpdateAvatar = Schema.Struct({ ...AvatarTraits.fields, name: Schema.optional(AvatarName) })
export type UpdateAvatar = typeof UpdateAvatar.Type

/** The multipart text fields of an upload (persona flattened; personality as a comma list). */
export const UPLOAD_FIELDS = ["name", "gender", "ageRange", "style", "ethnicity", "personaName", "personaAge", "personaPersonality", "personaBackground"] as const

export const UploadFields = Schema.Struct({
  name: AvatarName,
  gender: Schema.optional(Gender),
  ageRange: Schema.optional(AgeRange),
  style: Schema.optional(Attribute),
  ethnicity: Schema.optional(Attribute),
  personaName: Schema.optional(PersonaName),
  personaAge: Schema.optional(Schema.NumberFromString.pipe(Schema.compose(PersonaAge))),
  personaPersonality: Schema.optional(Schema.split(",").pipe(
    Schema.compose(Schema.Array(Schema.String)),
    Schema.transform(Schema.Array(Schema.String), { strict: true, decode: (items) => items.map((s) => s.trim()).filter((s) => s !== ""), encode: (s) => s }),
    Schema.compose(Personality)
  )),
  personaBackground: Schema.optional(PersonaBackground)
})

/** What a generation job reads from its row's settings. */
export const AvatarGenerationSettings = Schema.Struct({
  mode: Schema.Literal("text", "preset", "reference"),
  prompt: Schema.String,
  name: Schema.String,
  width: Schema.Int,
  height: Schema.Int,
  presetId: Schema.NullOr(Schema.String),
  referenceAvatarId: Schema.NullOr(Schema.String),
  traits: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
export type AvatarGenerationSettings = typeof AvatarGenerationSettings.Type
