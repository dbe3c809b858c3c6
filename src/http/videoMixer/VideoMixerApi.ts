import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../accounts/Authentication.js"
import { InsufficientCredits, RateLimited, ServiceUnavailable } from "../platform/ApiError.js"
import { uploadMultipartLimits } from "../uploads/UploadsApi.js"
import { GenerationNotFound, GenerationsUnavailable } from "../../services/generations/GenerationError.js"
import { GenerationStatus } from "../../services/generations/Generations.js"
import { ValidationError } from "../../services/platform/DomainError.js"
import {
  InvalidUpload,
  StorageQuotaExceeded,
  UnreadableMedia,
  UnsupportedFileType,
  UploadTooLarge
} from "../../services/uploads/UploadError.js"
import {
  AspectRatio,
  DistributionMode,
  FrameRate,
  MetadataSource,
  MixSettings,
  Resolution,
  VideoBitrate
} from "../../services/videoMixer/MixSettings.js"
import {
  GroupNotFound,
  OutputNotFound,
  OutputsNotReady,
  ProjectBusy,
  ProjectNotFound,
  VideoNotFound
} from "../../services/videoMixer/VideoMixerError.js"

// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f-\u009f]*$/
// eslint-disable-next-line no-control-regex
const NO_CONTROL_BUT_LINES = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$/

const ProjectName = Schema.Trim.pipe(
  Schema.minLength(1, { message: () => "name must not be empty" }),
  Schema.maxLength(100, { message: () => "name must be at most 100 characters" }),
  Schema.pattern(NO_CONTROL, { message: () => "name must not contain control characters" })
)
const Description = Schema.String.pipe(
  Schema.maxLength(500, { message: () => "description must be at most 500 characters" }),
  Schema.pattern(NO_CONTROL_BUT_LINES, { message: () => "description must not contain control characters" })
)
const GroupOrder = Schema.Int.pipe(Schema.between(0, 1_000_000, { message: () => "order must be a whole number from 0 to 1000000" }))
const uuid = (what: string) => Schema.UUID.annotations({ message: () => `${what} must be a UUID` })
const ProjectId = uuid("the project id")

/** Unknown fields are refused (400), never ignored: a misspelt setting must not silently fall back. */
const strict = { parseOptions: { onExcessProperty: "error" } } as const

export const VideoItem = Schema.Struct({
  id: Schema.String,
  projectId: Schema.String,
  groupId: Schema.NullOr(Schema.String),
  uploadId: Schema.String,
  fileName: Schema.String,
  fileSize: Schema.Number,
  mimeType: Schema.String,
  duration: Schema.Number,
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number),
  order: Schema.Number,
  /** The owner's private download of the source file (GET, bearer). */
  downloadUrl: Schema.String,
  createdAt: Schema.String
}).annotations({ identifier: "VideoMixerVideo" })

export const GroupItem = Schema.Struct({
  id: Schema.String,
  projectId: Schema.String,
  name: Schema.String,
  order: Schema.Number,
  createdAt: Schema.String,
  videos: Schema.Array(VideoItem)
}).annotations({ identifier: "VideoMixerGroup" })

export const ProjectItem = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  description: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  videos: Schema.Array(VideoItem),
  groups: Schema.Array(GroupItem)
}).annotations({ identifier: "VideoMixerProject" })

/** A generation as the web app's Video Mixer page reads it (frontend-contract 2.5): flat settings, outputPaths a JSON string. */
export const MixGenerationItem = Schema.Struct({
  id: Schema.String,
  projectId: Schema.String,
  status: GenerationStatus,
  progress: Schema.Number,
  totalVideos: Schema.Number,
  videosDelivered: Schema.Number,
  /** Credits it cost in the end: charged minus refunded. */
  creditUsed: Schema.Number,
  createdAt: Schema.String,
  completedAt: Schema.NullOr(Schema.String),
  /** A JSON-encoded array of download URLs (the web app JSON.parses it), or null until outputs exist. */
  outputPaths: Schema.NullOr(Schema.String),
  errorMessage: Schema.NullOr(Schema.String),
  enableOrderMixing: Schema.Boolean,
  enableDifferentStart: Schema.Boolean,
  fixedStartVideoId: Schema.NullOr(Schema.String),
  enableGroupMixing: Schema.Boolean,
  groupMixingMode: Schema.Literal("sequential", "random"),
  enableSpeedVariations: Schema.Boolean,
  speedMin: Schema.Number,
  speedMax: Schema.Number,
  metadataSource: MetadataSource,
  videoBitrate: VideoBitrate,
  videoResolution: Resolution,
  frameRate: FrameRate,
  aspectRatio: AspectRatio,
  durationType: Schema.Literal("original", "fixed"),
  fixedDuration: Schema.NullOr(Schema.Number),
  smartDistribution: Schema.Boolean,
  distributionMode: DistributionMode,
  audioOption: Schema.Literal("keep", "mute")
}).annotations({ identifier: "VideoMixerGeneration" })

export const MixRequest = Schema.Struct({
  projectId: ProjectId,
  totalVideos: Schema.Number.annotations({ message: () => "totalVideos must be a number" }),
  settings: MixSettings
}).annotations(strict)

const Estimate = Schema.Struct({
  totalSourceVideos: Schema.Number,
  totalGroups: Schema.Number,
  estimatedDurationPerVideo: Schema.Number,
  totalVideosToGenerate: Schema.Number,
  /** null when too large to show (more than 10 videos or groups). */
  possibleCombinations: Schema.NullOr(Schema.Number),
  creditCostPerVideo: Schema.Number,
  totalCreditCost: Schema.Number,
  strength: Schema.Number,
  strengthLabel: Schema.Literal("None", "Weak", "Fair", "Good", "Strong", "Excellent")
}).annotations({ identifier: "VideoMixerEstimate" })

const FileIndex = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^\d{1,6}$/, { message: () => "fileIndex must be a whole number from 0" })),
  Schema.NumberFromString
)

const binary = (contentType: string) =>
  Schema.Uint8ArrayFromSelf.pipe(HttpApiSchema.withEncoding({ kind: "Uint8Array", contentType }))

/** An accepted generate's answer (also written by the lean route, generateRoute.ts). */
export const Generated = Schema.Struct({
  success: Schema.Literal(true),
  generation: MixGenerationItem,
  creditUsed: Schema.Number,
  creditBalance: Schema.Number,
  message: Schema.String
})
export const GENERATED_STATUS = 201

/** Video Mixer (/api/apps/video-mixer): projects, groups, source videos, estimate, generate, downloads. */
export class VideoMixerApi extends HttpApiGroup.make("videoMixer")
  .add(
    HttpApiEndpoint.get("listProjects", "/projects")
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), projects: Schema.Array(ProjectItem) }))
  )
  .add(
    HttpApiEndpoint.post("createProject", "/projects")
      .setPayload(Schema.Struct({ name: ProjectName, description: Schema.optional(Schema.NullOr(Description)) }).annotations(strict))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), project: ProjectItem }), { status: 201 })
      .annotate(OpenApi.Description, "Name 1-100 characters, description up to 500; limited by RATE_LIMIT_PROJECT_CREATE.")
  )
  .add(
    HttpApiEndpoint.get("getProject", "/projects/:id")
      .setPath(Schema.Struct({ id: ProjectId }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), project: ProjectItem }))
  )
  .add(
    HttpApiEndpoint.put("updateProject", "/projects/:id")
      .setPath(Schema.Struct({ id: ProjectId }))
      .setPayload(
        Schema.Struct({ name: Schema.optional(ProjectName), description: Schema.optional(Schema.NullOr(Description)) }).annotations(strict)
      )
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), project: ProjectItem }))
  )
  .add(
    HttpApiEndpoint.del("deleteProject", "/projects/:id")
      .setPath(Schema.Struct({ id: ProjectId }))
      .addSuccess(Schema.Struct({
        success: Schema.Literal(true),
        freedSpace: Schema.Number,
        deletedVideos: Schema.Number,
        deletedGenerations: Schema.Number
      }))
      .annotate(
        OpenApi.Description,
        "Deletes the project, its videos' files (quota released), its groups and its generations with their outputs; a running generation is cancelled and refunded first."
      )
  )
  .add(
    HttpApiEndpoint.post("createGroup", "/groups")
      .setPayload(Schema.Struct({ projectId: ProjectId, name: ProjectName, order: Schema.optional(GroupOrder) }).annotations(strict))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), group: GroupItem }), { status: 201 })
  )
  .add(
    HttpApiEndpoint.get("listGroups", "/projects/:projectId/groups")
      .setPath(Schema.Struct({ projectId: ProjectId }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), groups: Schema.Array(GroupItem) }))
  )
  .add(
    HttpApiEndpoint.del("deleteGroup", "/groups/:id")
      .setPath(Schema.Struct({ id: uuid("the group id") }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true) }))
      .annotate(OpenApi.Description, "Deletes the group; its videos stay in the project, ungrouped.")
  )
  .add(
    HttpApiEndpoint.post("uploadVideo", "/videos/upload")
      .setPayload(HttpApiSchema.MultipartStream(Schema.Struct({}), uploadMultipartLimits))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), video: VideoItem, storageUsed: Schema.Number }), { status: 201 })
      .addError(UploadTooLarge)
      .addError(StorageQuotaExceeded)
      .addError(UnsupportedFileType)
      .addError(UnreadableMedia)
      .addError(InvalidUpload)
      .annotate(
        OpenApi.Description,
        "multipart/form-data: `projectId`, optional `groupId`, then one video part `file`. The project (and group) are checked before anything is reserved or written."
      )
  )
  .add(
    HttpApiEndpoint.get("listVideos", "/projects/:projectId/videos")
      .setPath(Schema.Struct({ projectId: ProjectId }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), videos: Schema.Array(VideoItem) }))
  )
  .add(
    HttpApiEndpoint.put("moveVideo", "/videos/:id")
      .setPath(Schema.Struct({ id: uuid("the video id") }))
      .setPayload(Schema.Struct({ groupId: Schema.NullOr(uuid("groupId")) }).annotations(strict))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), video: VideoItem }))
      .annotate(OpenApi.Description, "Only `groupId` (a group of the same project, or null); any other field is 400.")
  )
  .add(
    HttpApiEndpoint.del("deleteVideo", "/videos/:id")
      .setPath(Schema.Struct({ id: uuid("the video id") }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), freedSpace: Schema.Number, storageUsed: Schema.Number }))
      .addError(ProjectBusy)
      .annotate(OpenApi.Description, "Deletes the video and its file; 409 while a generation of its project is pending or processing.")
  )
  .add(
    HttpApiEndpoint.post("estimate", "/estimate")
      .setPayload(MixRequest)
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), estimate: Estimate }))
  )
  .add(
    HttpApiEndpoint.post("generate", "/generate")
      .setPayload(MixRequest)
      .addSuccess(Generated, { status: GENERATED_STATUS })
      .addError(InsufficientCredits)
      .annotate(
        OpenApi.Description,
        "Charges creditCostPerOutput x totalVideos (0 for enterprise users) and queues the render; limited by RATE_LIMIT_VIDEO_MIXER_GENERATE."
      )
  )
  .add(
    HttpApiEndpoint.get("listGenerations", "/projects/:projectId/generations")
      .setPath(Schema.Struct({ projectId: ProjectId }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), generations: Schema.Array(MixGenerationItem) }))
  )
  .add(
    HttpApiEndpoint.get("download", "/download/:generationId/:fileIndex")
      .setPath(Schema.Struct({ generationId: uuid("the generation id"), fileIndex: FileIndex }))
      .addSuccess(binary("video/mp4"))
      .addError(OutputsNotReady)
      .addError(OutputNotFound)
      .annotate(OpenApi.Description, "One output (index from 0) as generated_video_<i+1>.mp4; supports a single Range.")
  )
  .add(
    HttpApiEndpoint.get("downloadAll", "/download-all/:generationId")
      .setPath(Schema.Struct({ generationId: uuid("the generation id") }))
      .addSuccess(binary("application/zip"))
      .addError(OutputsNotReady)
      .annotate(OpenApi.Description, "Every output in a streamed ZIP (stored, not recompressed): video_<i+1>.mp4.")
  )
  .add(
    HttpApiEndpoint.get("stats", "/stats")
      .addSuccess(Schema.Struct({
        success: Schema.Literal(true),
        totalProjects: Schema.Number,
        totalVideos: Schema.Number,
        totalGenerations: Schema.Number
      }))
  )
  .addError(ValidationError)
  .addError(ProjectNotFound)
  .addError(GroupNotFound)
  .addError(VideoNotFound)
  .addError(GenerationNotFound)
  .addError(GenerationsUnavailable)
  .addError(RateLimited)
  .addError(ServiceUnavailable)
  .middleware(Authentication)
  .prefix("/api/apps/video-mixer")
  .annotate(OpenApi.Title, "Video Mixer") {}
