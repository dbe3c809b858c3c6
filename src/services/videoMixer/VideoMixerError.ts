import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** No project with this id belongs to the caller (someone else's answers the same: no probing). */
export class ProjectNotFound extends Schema.TaggedError<ProjectNotFound>()(
  "ProjectNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** No group with this id is in a project of the caller. */
export class GroupNotFound extends Schema.TaggedError<GroupNotFound>()(
  "GroupNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** No video with this id is in a project of the caller. */
export class VideoNotFound extends Schema.TaggedError<VideoNotFound>()(
  "VideoNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * A generation of the project is pending or processing: its job renders the source files it was given,
 * so they cannot be deleted until it ends (or is cancelled).
 */
export class ProjectBusy extends Schema.TaggedError<ProjectBusy>()(
  "ProjectBusy",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** The generation has no outputs to download (yet, or at all): it is not completed or partial. */
export class OutputsNotReady extends Schema.TaggedError<OutputsNotReady>()(
  "OutputsNotReady",
  { message: Schema.String, generationStatus: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** The generation has no output at this index. */
export class OutputNotFound extends Schema.TaggedError<OutputNotFound>()(
  "OutputNotFound",
  { message: Schema.String, outputCount: Schema.Number },
  HttpApiSchema.annotations({ status: 404 })
) {}
