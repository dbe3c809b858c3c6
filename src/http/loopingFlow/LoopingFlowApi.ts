import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../accounts/Authentication.js"
import { RateLimited, ServiceUnavailable } from "../platform/ApiError.js"
import { uploadMultipartLimits } from "../uploads/UploadsApi.js"
import { InsufficientCredits } from "../../services/credits/LedgerError.js"
import { GenerationFinished, GenerationNotFound, GenerationsUnavailable } from "../../services/generations/GenerationError.js"
import { GenerationStatus } from "../../services/generations/Generations.js"
import { ValidationError } from "../../services/platform/DomainError.js"
import {
  AudioLayerNotFound,
  AudioLayerTaken,
  LoopingProjectNotFound,
  LoopingVideoNotFound,
  LoopNotReady
} from "../../services/loopingFlow/LoopingFlowError.js"
import { GenerateRequest, LayerPatch, LoopStyleSchema, TargetDuration } from "../../services/loopingFlow/LoopSettings.js"
import {
  InvalidUpload,
  StorageQuotaExceeded,
  UnreadableMedia,
  UnsupportedFileType,
  UploadTooLarge
} from "../../services/uploads/UploadError.js"

/** A source video as the web app reads it (frontend-contract 2.6); `filePath` is its private download URL. */
export const LoopVideoItem = Schema.Struct({
  id: Schema.String,
  fileName: Schema.String,
  filePath: Schema.String,
  fileSize: Schema.Number,
  duration: Schema.NullOr(Schema.Number),
  mimeType: Schema.String,
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number),
  createdAt: Schema.String
}).annotations({ identifier: "LoopVideo" })

export const AudioLayerItem = Schema.Struct({
  id: Schema.String,
  layerIndex: Schema.Number,
  fileName: Schema.String,
  fileSize: Schema.Number,
  duration: Schema.NullOr(Schema.Number),
  volume: Schema.Number,
  muted: Schema.Boolean,
  fadeIn: Schema.Number,
  fadeOut: Schema.Number
}).annotations({ identifier: "LoopAudioLayer" })

export const LoopGenerationItem = Schema.Struct({
  id: Schema.String,
  status: GenerationStatus,
  progress: Schema.Number,
  targetDuration: Schema.Number,
  creditUsed: Schema.Number,
  outputPath: Schema.optional(Schema.String),
  errorMessage: Schema.optional(Schema.String),
  loopStyle: LoopStyleSchema,
  crossfadeDuration: Schema.Number,
  videoCrossfade: Schema.Boolean,
  audioCrossfade: Schema.Boolean,
  masterVolume: Schema.Number,
  audioFadeIn: Schema.Number,
  audioFadeOut: Schema.Number,
  muteOriginal: Schema.Boolean,
  audioLayers: Schema.Number,
  createdAt: Schema.String,
  completedAt: Schema.optional(Schema.String)
}).annotations({ identifier: "LoopGeneration" })

export const LoopProjectItem = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  description: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  videos: Schema.Array(LoopVideoItem),
  audioLayers: Schema.Array(AudioLayerItem),
  generations: Schema.Array(LoopGenerationItem)
}).annotations({ identifier: "LoopProject" })

const Id = (what: string) => Schema.UUID.annotations({ message: () => `the ${what} id must be a UUID` })
const Name = Schema.Trim.pipe(
  Schema.minLength(1, { message: () => "name must be 1 to 200 characters" }),
  Schema.maxLength(200, { message: () => "name must be 1 to 200 characters" })
)
const Description = Schema.String.pipe(Schema.maxLength(2000, { message: () => "description must be at most 2000 characters" }))
const Ok = Schema.Literal(true)

/** /api/apps/looping-flow, the web app's routes (frontend-contract 2.6), flat bodies like the old backend's. */
export class LoopingFlowApi extends HttpApiGroup.make("loopingFlow")
  .add(
    HttpApiEndpoint.get("listProjects", "/projects")
      .addSuccess(Schema.Struct({ success: Ok, projects: Schema.Array(LoopProjectItem) }))
      .annotate(OpenApi.Description, "The caller's projects, each with its videos, audio layers and latest 5 generations.")
  )
  .add(
    HttpApiEndpoint.post("createProject", "/projects")
      .setPayload(Schema.Struct({ name: Name, description: Schema.optional(Description) }))
      .addSuccess(Schema.Struct({ success: Ok, project: LoopProjectItem }), { status: 201 })
  )
  .add(
    HttpApiEndpoint.get("getProject", "/projects/:id")
      .setPath(Schema.Struct({ id: Id("project") }))
      .addSuccess(Schema.Struct({ success: Ok, project: LoopProjectItem }))
  )
  .add(
    HttpApiEndpoint.del("deleteProject", "/projects/:id")
      .setPath(Schema.Struct({ id: Id("project") }))
      .addSuccess(Schema.Struct({ success: Ok }))
      .annotate(OpenApi.Description, "Deletes the project and its files; its generations (and their outputs) stay in My Work.")
  )
  .add(
    HttpApiEndpoint.post("uploadVideo", "/videos/upload")
      .setPayload(HttpApiSchema.MultipartStream(Schema.Struct({}), uploadMultipartLimits))
      .addSuccess(Schema.Struct({ success: Ok, video: LoopVideoItem, storageUsed: Schema.Number }), { status: 201 })
      .annotate(OpenApi.Description, "multipart/form-data: `projectId`, then `file` (a video).")
  )
  .add(
    HttpApiEndpoint.del("deleteVideo", "/videos/:id")
      .setPath(Schema.Struct({ id: Id("video") }))
      .addSuccess(Schema.Struct({ success: Ok, freedSpace: Schema.Number, storageUsed: Schema.Number }))
  )
  .add(
    HttpApiEndpoint.post("uploadAudioLayer", "/projects/:projectId/audio-layers/upload")
      .setPath(Schema.Struct({ projectId: Id("project") }))
      .setPayload(HttpApiSchema.MultipartStream(Schema.Struct({}), uploadMultipartLimits))
      .addSuccess(Schema.Struct({ success: Ok, audioLayer: AudioLayerItem, storageUsed: Schema.Number }), { status: 201 })
      .annotate(
        OpenApi.Description,
        "multipart/form-data: `layerIndex` (0-3), `volume` (0-100), `fadeIn`, `fadeOut` (0-10 s), optional `muted`, then `file` (audio). " +
          "Every later generation of the project mixes its layers in."
      )
  )
  .add(
    HttpApiEndpoint.patch("updateAudioLayer", "/audio-layers/:layerId")
      .setPath(Schema.Struct({ layerId: Id("audio layer") }))
      .setPayload(LayerPatch)
      .addSuccess(Schema.Struct({ success: Ok, audioLayer: AudioLayerItem }))
  )
  .add(
    HttpApiEndpoint.del("deleteAudioLayer", "/audio-layers/:layerId")
      .setPath(Schema.Struct({ layerId: Id("audio layer") }))
      .addSuccess(Schema.Struct({ success: Ok, freedSpace: Schema.Number, storageUsed: Schema.Number }))
  )
  .add(
    HttpApiEndpoint.post("estimate", "/estimate")
      .setPayload(Schema.Struct({ targetDuration: TargetDuration }))
      .addSuccess(Schema.Struct({ success: Ok, creditCost: Schema.Number }))
  )
  .add(
    HttpApiEndpoint.post("generate", "/generate")
      .setPayload(GenerateRequest)
      .addSuccess(
        Schema.Struct({ success: Ok, generation: LoopGenerationItem, creditUsed: Schema.Number, creditBalance: Schema.Number }),
        { status: 201 }
      )
      .annotate(OpenApi.Description, "Charges the loop's cost and queues it; the project's audio layers are mixed in as they are now.")
  )
  .add(
    HttpApiEndpoint.get("projectGenerations", "/projects/:projectId/generations")
      .setPath(Schema.Struct({ projectId: Id("project") }))
      .addSuccess(Schema.Struct({ success: Ok, generations: Schema.Array(LoopGenerationItem) }))
  )
  .add(
    HttpApiEndpoint.post("cancel", "/generations/:id/cancel")
      .setPath(Schema.Struct({ id: Id("generation") }))
      .addSuccess(Schema.Struct({ success: Ok, generation: LoopGenerationItem }))
      .annotate(OpenApi.Description, "Stops a pending or running loop; all it charged is refunded.")
  )
  .add(
    HttpApiEndpoint.get("download", "/download/:generationId")
      .setPath(Schema.Struct({ generationId: Id("generation") }))
      .addSuccess(Schema.Uint8ArrayFromSelf.pipe(HttpApiSchema.withEncoding({ kind: "Uint8Array", contentType: "video/mp4" })))
      .annotate(OpenApi.Description, "The finished loop (video/mp4, attachment), with a single Range.")
  )
  .addError(LoopingProjectNotFound)
  .addError(LoopingVideoNotFound)
  .addError(AudioLayerNotFound)
  .addError(AudioLayerTaken)
  .addError(LoopNotReady)
  .addError(ValidationError)
  .addError(InsufficientCredits)
  .addError(GenerationsUnavailable)
  .addError(GenerationNotFound)
  .addError(GenerationFinished)
  .addError(UploadTooLarge)
  .addError(StorageQuotaExceeded)
  .addError(UnsupportedFileType)
  .addError(UnreadableMedia)
  .addError(InvalidUpload)
  .addError(RateLimited)
  .addError(ServiceUnavailable)
  .middleware(Authentication)
  .prefix("/api/apps/looping-flow")
  .annotate(OpenApi.Title, "Looping Flow") {}
