import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** No project with this id belongs to the caller (someone else's answers the same). */
export class ProjectNotFound extends Schema.TaggedError<ProjectNotFound>()(
  "ProjectNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** No avatar with this id belongs to the caller (or it is still being generated). */
export class AvatarNotFound extends Schema.TaggedError<AvatarNotFound>()(
  "AvatarNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class PresetNotFound extends Schema.TaggedError<PresetNotFound>()(
  "PresetNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** No Avatar Creator generation with this id belongs to the caller. */
export class AvatarGenerationNotFound extends Schema.TaggedError<AvatarGenerationNotFound>()(
  "AvatarGenerationNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}
