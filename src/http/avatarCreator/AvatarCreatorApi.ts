import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../accounts/Authentication.js"
import { RateLimited, ServiceUnavailable } from "../platform/ApiError.js"
import { uploadMultipartLimits } from "../uploads/UploadsApi.js"
import { AvatarGenerationNotFound, AvatarNotFound, PresetNotFound, ProjectNotFound } from "../../services/avatarCreator/AvatarError.js"
import {
  CreateProject,
  FromPreset,
  GenerateAvatar,
  Id,
  PresetCategory,
  SourceType,
  UpdateAvatar,
  UpdateProject
} from "../../services/avatarCreator/avatarFields.js"
import { InsufficientCredits } from "../../services/credits/LedgerError.js"
import { GenerationsUnavailable } from "../../services/generations/GenerationError.js"
import { GenerationStatus } from "../../services/generations/Generations.js"
import { ImageGenerationNotConfigured } from "../../services/images/ImageGenerator.js"
import { ValidationError } from "../../services/platform/DomainError.js"
import {
  InvalidUpload,
  StorageQuotaExceeded,
  UnreadableMedia,
  UnsupportedFileType,
  UploadTooLarge
} from "../../services/uploads/UploadError.js"

const NullableText = Schema.NullOr(Schema.String)

export const AvatarItem = Schema.Struct({
  id: Schema.String,
  projectId: Schema.String,
  name: Schema.String,
  /** The private download paths of the picture and its 300x300 thumbnail (bearer auth, owner only). */
  baseImageUrl: Schema.String,
  thumbnailUrl: Schema.String,
  sourceType: SourceType,
  gender: NullableText,
  ageRange: NullableText,
  style: NullableText,
  ethnicity: NullableText,
  personaName: NullableText,
  personaAge: Schema.NullOr(Schema.Number),
  personaPersonality: Schema.Array(Schema.String),
  personaBackground: NullableText,
  generationPrompt: NullableText,
  presetId: NullableText,
  usageCount: Schema.Number,
  lastUsedAt: NullableText,
  createdAt: Schema.String,
  updatedAt: Schema.String
}).annotations({ identifier: "Avatar" })

export const ProjectItem = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  description: NullableText,
  createdAt: Schema.String,
  updatedAt: Schema.String,
  avatars: Schema.Array(AvatarItem)
}).annotations({ identifier: "AvatarProject" })

export const AvatarGenerationItem = Schema.Struct({
  id: Schema.String,
  status: GenerationStatus,
  prompt: NullableText,
  projectId: NullableText,
  /** Set once completed: GET /avatars/:id then. */
  avatarId: NullableText,
  errorMessage: NullableText,
  progress: Schema.Number,
  creditUsed: Schema.Number,
  createdAt: Schema.String,
  completedAt: NullableText
}).annotations({ identifier: "AvatarGeneration" })

export const PresetItem = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  description: Schema.String,
  category: PresetCategory,
  prompt: Schema.String,
  gender: NullableText,
  ageRange: NullableText,
  style: NullableText,
  imageUrl: Schema.Null,
  thumbnailUrl: Schema.Null,
  usageCount: Schema.Number
}).annotations({ identifier: "AvatarPreset" })

const ok = <F extends Schema.Struct.Fields>(fields: F) => Schema.Struct({ success: Schema.Literal(true), ...fields })
const Started = ok({ generation: AvatarGenerationItem, creditUsed: Schema.Number, creditBalance: Schema.Number })
const ProjectPath = Schema.Struct({ id: Id })
const AvatarPath = Schema.Struct({ id: Id })
const InProject = Schema.Struct({ projectId: Id })

/** /api/apps/avatar-creator: the caller's projects, avatars and generations (bearer auth), in the web app's flat shapes. */
export class AvatarCreatorApi extends HttpApiGroup.make("avatarCreator")
  .add(HttpApiEndpoint.get("listProjects", "/projects").addSuccess(ok({ projects: Schema.Array(ProjectItem) })))
  .add(
    HttpApiEndpoint.post("createProject", "/projects")
      .setPayload(CreateProject)
      .addSuccess(ok({ message: Schema.String, project: ProjectItem }), { status: 201 })
      .annotate(OpenApi.Description, "20 per hour per user.")
  )
  .add(HttpApiEndpoint.get("getProject", "/projects/:id").setPath(ProjectPath).addSuccess(ok({ project: ProjectItem })))
  .add(HttpApiEndpoint.put("updateProject", "/projects/:id").setPath(ProjectPath).setPayload(UpdateProject).addSuccess(ok({ project: ProjectItem })))
  .add(HttpApiEndpoint.del("deleteProject", "/projects/:id").setPath(ProjectPath).addSuccess(ok({ message: Schema.String })))
  .add(
    HttpApiEndpoint.post("upload", "/projects/:projectId/avatars/upload")
      .setPath(InProject)
      .setPayload(HttpApiSchema.MultipartStream(Schema.Struct({}), uploadMultipartLimits))
      .addSuccess(ok({ message: Schema.String, avatar: AvatarItem, creditUsed: Schema.Number, creditBalance: Schema.Number }), { status: 201 })
      .addError(UploadTooLarge)
      .addError(StorageQuotaExceeded)
      .addError(UnsupportedFileType)
      .addError(UnreadableMedia)
      .addError(InvalidUpload)
      .annotate(
        OpenApi.Description,
        "multipart/form-data: `name` and the optional persona fields first, then the file `image` (png, jpeg, webp; 10 MB; 256-4096 px a side). 2 credits; 10 per minute."
      )
  )
  .add(
    HttpApiEndpoint.post("generate", "/projects/:projectId/avatars/generate")
      .setPath(InProject)
      .setPayload(GenerateAvatar)
      .addSuccess(Started, { status: 201 })
      .annotate(OpenApi.Description, "10 credits (12 with referenceAvatarId); 5 per minute. Poll GET /generations/:id.")
  )
  .add(
    HttpApiEndpoint.post("fromPreset", "/projects/:projectId/avatars/from-preset")
      .setPath(InProject)
      .setPayload(FromPreset)
      .addSuccess(Started, { status: 201 })
      .annotate(OpenApi.Description, "8 credits; 8 per minute.")
  )
  .add(HttpApiEndpoint.get("generation", "/generations/:id").setPath(AvatarPath).addSuccess(ok({ generation: AvatarGenerationItem })))
  .add(HttpApiEndpoint.get("listAvatars", "/avatars").addSuccess(ok({ avatars: Schema.Array(AvatarItem) })))
  .add(HttpApiEndpoint.get("getAvatar", "/avatars/:id").setPath(AvatarPath).addSuccess(ok({ avatar: AvatarItem })))
  .add(HttpApiEndpoint.put("updateAvatar", "/avatars/:id").setPath(AvatarPath).setPayload(UpdateAvatar).addSuccess(ok({ avatar: AvatarItem })))
  .add(HttpApiEndpoint.del("deleteAvatar", "/avatars/:id").setPath(AvatarPath).addSuccess(ok({ message: Schema.String })))
  .add(
    HttpApiEndpoint.get("avatarImage", "/avatars/:id/image")
      .setPath(AvatarPath)
      .addSuccess(Schema.Uint8ArrayFromSelf.pipe(HttpApiSchema.withEncoding({ kind: "Uint8Array", contentType: "application/octet-stream" })))
  )
  .add(
    HttpApiEndpoint.get("avatarThumbnail", "/avatars/:id/thumbnail")
      .setPath(AvatarPath)
      .addSuccess(Schema.Uint8ArrayFromSelf.pipe(HttpApiSchema.withEncoding({ kind: "Uint8Array", contentType: "application/octet-stream" })))
  )
  .add(
    HttpApiEndpoint.get("usageHistory", "/avatars/:id/usage-history")
      .setPath(AvatarPath)
      .addSuccess(ok({
        history: Schema.Array(Schema.Struct({
          id: Schema.String,
          appId: Schema.String,
          action: Schema.String,
          referenceId: NullableText,
          createdAt: Schema.String
        })),
        summary: Schema.Struct({
          totalUsage: Schema.Number,
          byApp: Schema.Array(Schema.Struct({ appId: Schema.String, count: Schema.Number })),
          lastUsedAt: NullableText
        })
      }))
  )
  .add(
    HttpApiEndpoint.get("stats", "/stats").addSuccess(ok({
      balance: Schema.Number,
      isEnterprise: Schema.Boolean,
      costs: Schema.Struct({ upload: Schema.Number, generate: Schema.Number, preset: Schema.Number, reference: Schema.Number }),
      totalProjects: Schema.Number,
      totalAvatars: Schema.Number,
      imageGenerationConfigured: Schema.Boolean
    }))
  )
  .addError(ProjectNotFound)
  .addError(AvatarNotFound)
  .addError(PresetNotFound)
  .addError(AvatarGenerationNotFound)
  .addError(InsufficientCredits)
  .addError(GenerationsUnavailable)
  .addError(ImageGenerationNotConfigured)
  .addError(ValidationError)
  .addError(RateLimited)
  .addError(ServiceUnavailable)
  .middleware(Authentication)
  .prefix("/api/apps/avatar-creator")
  .annotate(OpenApi.Title, "Avatar Creator") {}

/** The preset catalogue and the app's health: public, like the old routes. */
export class AvatarPresetsApi extends HttpApiGroup.make("avatarPresets")
  .add(
    HttpApiEndpoint.get("presets", "/presets")
      .setUrlParams(Schema.Struct({ category: Schema.optional(PresetCategory) }))
      .addSuccess(ok({ presets: Schema.Array(PresetItem) }))
  )
  .add(HttpApiEndpoint.get("preset", "/presets/:id").setPath(Schema.Struct({ id: Id })).addSuccess(ok({ preset: PresetItem })))
  .add(
    HttpApiEndpoint.get("health", "/health").addSuccess(ok({
      app: Schema.Literal("avatar-creator"),
      status: Schema.Literal("ok"),
      imageGenerationConfigured: Schema.Boolean
    }))
  )
  .addError(PresetNotFound)
  .prefix("/api/apps/avatar-creator")
  .annotate(OpenApi.Title, "Avatar Creator presets") {}
