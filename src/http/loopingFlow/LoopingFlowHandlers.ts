import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Effect } from "effect"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { Generations } from "../../services/generations/Generations.js"
import {
  type LoopAudioLayer,
  type LoopGeneration,
  LoopingFlow,
  type LoopProject,
  type LoopVideo
} from "../../services/loopingFlow/LoopingFlow.js"
import { Api } from "../Api.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"
import { serveFile } from "../uploads/download.js"
import { declaredLength } from "../uploads/UploadsHandlers.js"

const PREFIX = "/api/apps/looping-flow"

const videoItem = (video: LoopVideo) => ({
  id: video.id,
  fileName: video.fileName,
  filePath: `/api/uploads/${video.uploadId}/download`,
  fileSize: video.fileSize,
  duration: video.duration,
  mimeType: video.mimeType,
  width: video.width,
  height: video.height,
  createdAt: video.createdAt.toISOString()
})

const layerItem = (layer: LoopAudioLayer) => ({
  id: layer.id,
  layerIndex: layer.layerIndex,
  fileName: layer.fileName,
  fileSize: layer.fileSize,
  duration: layer.duration,
  volume: layer.volume,
  muted: layer.muted,
  fadeIn: layer.fadeIn,
  fadeOut: layer.fadeOut
})

const setting = <A>(settings: Readonly<Record<string, unknown>>, key: string, fallback: A): A => (settings[key] as A | undefined) ?? fallback

const generationItem = (generation: LoopGeneration) => {
  const s = generation.settings
  return {
    id: generation.id,
    status: generation.status,
    progress: generation.progress,
    targetDuration: setting(s, "targetDuration", 0),
    creditUsed: generation.creditUsed,
    ...(generation.outputs.length === 0 ? {} : { outputPath: `${PREFIX}/download/${generation.id}` }),
    ...(generation.errorMessage === null ? {} : { errorMessage: generation.errorMessage }),
    loopStyle: setting(s, "loopStyle", "crossfade" as const),
    crossfadeDuration: setting(s, "crossfadeDuration", 1),
    videoCrossfade: setting(s, "videoCrossfade", true),
    audioCrossfade: setting(s, "audioCrossfade", true),
    masterVolume: setting(s, "masterVolume", 100),
    audioFadeIn: setting(s, "audioFadeIn", 0),
    audioFadeOut: setting(s, "audioFadeOut", 0),
    muteOriginal: setting(s, "muteOriginal", false),
    audioLayers: setting<ReadonlyArray<unknown>>(s, "audioLayers", []).length,
    createdAt: generation.createdAt.toISOString(),
    ...(generation.completedAt === null ? {} : { completedAt: generation.completedAt.toISOString() })
  }
}

const projectItem = (project: LoopProject) => ({
  id: project.id,
  name: project.name,
  description: project.description,
  createdAt: project.createdAt.toISOString(),
  updatedAt: project.updatedAt.toISOString(),
  videos: project.videos.map(videoItem),
  audioLayers: project.audioLayers.map(layerItem),
  generations: project.generations.map(generationItem)
})

export const LoopingFlowHandlers = HttpApiBuilder.group(Api, "loopingFlow", (handlers) =>
  Effect.gen(function*() {
    const looping = yield* LoopingFlow
    const generations = yield* Generations
    const guard = yield* RateLimitGuard
    return handlers
      .handle("listProjects", () =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const projects = yield* looping.listProjects(user.id)
          return { success: true as const, projects: projects.map(projectItem) }
        }))
      .handle("createProject", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("projectCreate", `user:${user.id}`)
          const project = yield* looping.createProject(user.id, payload)
          return { success: true as const, project: projectItem(project) }
        }))
      .handle("getProject", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, project: projectItem(yield* looping.getProject(user.id, path.id)) }
        }))
      .handle("deleteProject", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* looping.deleteProject(user.id, path.id)
          return { success: true as const }
        }))
      .handle("uploadVideo", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("upload", `user:${user.id}`)
          const request = yield* HttpServerRequest.HttpServerRequest
          const { storageUsed, video } = yield* looping.addVideo(user.id, payload, declaredLength(request)).pipe(
            Effect.catchTag("MultipartError", Effect.die) // answered 400/413 by the error envelope
          )
          return { success: true as const, video: videoItem(video), storageUsed }
        }))
      .handle("deleteVideo", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, ...(yield* looping.removeVideo(user.id, path.id)) }
        }))
      .handle("uploadAudioLayer", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("upload", `user:${user.id}`)
          const request = yield* HttpServerRequest.HttpServerRequest
          const { audioLayer, storageUsed } = yield* looping.addAudioLayer(user.id, path.projectId, payload, declaredLength(request)).pipe(
            Effect.catchTag("MultipartError", Effect.die)
          )
          return { success: true as const, audioLayer: layerItem(audioLayer), storageUsed }
        }))
      .handle("updateAudioLayer", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, audioLayer: layerItem(yield* looping.updateAudioLayer(user.id, path.layerId, payload)) }
        }))
      .handle("deleteAudioLayer", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, ...(yield* looping.removeAudioLayer(user.id, path.layerId)) }
        }))
      .handle("estimate", ({ payload }) => Effect.succeed({ success: true as const, creditCost: looping.estimate(payload.targetDuration) }))
      .handle("generate", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const { creditBalance, generation } = yield* looping.generate(user.id, payload)
          return { success: true as const, generation: generationItem(generation), creditUsed: generation.creditUsed, creditBalance }
        }))
      .handle("projectGenerations", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const list = yield* looping.projectGenerations(user.id, path.projectId)
          return { success: true as const, generations: list.map(generationItem) }
        }))
      .handle("cancel", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          // only this app's generations: another app's id is not found here
          yield* looping.generation(user.id, path.id)
          yield* generations.cancel(path.id, user.id)
          return { success: true as const, generation: generationItem(yield* looping.generation(user.id, path.id)) }
        }))
      .handle("download", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const output = yield* looping.output(user.id, path.generationId)
          const request = yield* HttpServerRequest.HttpServerRequest
          return yield* serveFile(
            { storageKey: output.key, size: output.size, mime: "video/mp4", name: `looped-video-${output.generation.id}`, extension: "mp4" },
            request.headers["range"]
          )
        }))
  }))
