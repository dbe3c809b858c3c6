import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Effect } from "effect"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { Uploads } from "../../services/uploads/Uploads.js"
import {
  type ProjectDetail,
  type Video,
  VideoMixer
} from "../../services/videoMixer/VideoMixer.js"
import { Api } from "../Api.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"
import { serveFile } from "../uploads/download.js"
import { declaredLength } from "../uploads/UploadsHandlers.js"
import { generatedBody, generationItem } from "./generationItem.js"
import { serveZip } from "./zipDownload.js"


const videoItem = (v: Video) => ({
  id: v.id,
  projectId: v.projectId,
  groupId: v.groupId,
  uploadId: v.uploadId,
  fileName: v.fileName,
  fileSize: v.fileSize,
  mimeType: v.mimeType,
  duration: v.duration,
  width: v.width,
  height: v.height,
  order: v.order,
  downloadUrl: `/api/uploads/${v.uploadId}/download`,
  createdAt: v.createdAt.toISOString()
})

const projectItem = (p: ProjectDetail) => ({
  id: p.id,
  name: p.name,
  description: p.description,
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
  videos: p.videos.map(videoItem),
  groups: p.groups.map(groupItem)
})

const groupItem = (g: ProjectDetail["groups"][number]) => ({
  id: g.id,
  projectId: g.projectId,
  name: g.name,
  order: g.order,
  createdAt: g.createdAt.toISOString(),
  videos: g.videos.map(videoItem)
})

export const VideoMixerHandlers = HttpApiBuilder.group(Api, "videoMixer", (handlers) =>
  Effect.gen(function*() {
    const mixer = yield* VideoMixer
    const uploads = yield* Uploads
    const guard = yield* RateLimitGuard
    return handlers
      .handle("listProjects", () =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const projects = yield* mixer.listProjects(user.id)
          return { success: true as const, projects: projects.map(projectItem) }
        }))
      .handle("createProject", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("projectCreate", `user:${user.id}`)
          const project = yield* mixer.createProject(user.id, payload)
          return { success: true as const, project: projectItem(project) }
        }))
      .handle("getProject", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, project: projectItem(yield* mixer.getProject(user.id, path.id)) }
        }))
      .handle("updateProject", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, project: projectItem(yield* mixer.updateProject(user.id, path.id, payload)) }
        }))
      .handle("deleteProject", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const deleted = yield* mixer.deleteProject(user.id, path.id)
          return { success: true as const, ...deleted }
        }))
      .handle("createGroup", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, group: groupItem(yield* mixer.createGroup(user.id, payload)) }
        }))
      .handle("listGroups", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const groups = yield* mixer.listGroups(user.id, path.projectId)
          return { success: true as const, groups: groups.map(groupItem) }
        }))
      .handle("deleteGroup", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* mixer.deleteGroup(user.id, path.id)
          return { success: true as const }
        }))
      .handle("uploadVideo", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("upload", `user:${user.id}`)
          const request = yield* HttpServerRequest.HttpServerRequest
          const received = yield* uploads.receive({
            userId: user.id,
            kind: "video",
            parts: payload,
            declaredBytes: declaredLength(request),
            fields: ["projectId", "groupId"],
            beforeStore: mixer.checkUploadTarget(user.id)
          }).pipe(
            // a body the client got wrong: the error envelope answers it (400, or 413 at a parser limit)
            Effect.catchTag("MultipartError", Effect.die)
          )
          const video = yield* mixer.addVideo(user.id, received.upload, received.fields)
          return { success: true as const, video: videoItem(video), storageUsed: received.storageUsed }
        }))
      .handle("listVideos", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const videos = yield* mixer.listVideos(user.id, path.projectId)
          return { success: true as const, videos: videos.map(videoItem) }
        }))
      .handle("moveVideo", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, video: videoItem(yield* mixer.moveVideo(user.id, path.id, payload.groupId)) }
        }))
      .handle("deleteVideo", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const removed = yield* mixer.deleteVideo(user.id, path.id)
          return { success: true as const, ...removed }
        }))
      .handle("estimate", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, estimate: yield* mixer.estimate(user.id, payload) }
        }))
      .handle("generate", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("videoMixerGenerate", `user:${user.id}`)
          return generatedBody(yield* mixer.generate(user.id, payload))
        }))
      .handle("listGenerations", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const generations = yield* mixer.listGenerations(user.id, path.projectId)
          return { success: true as const, generations: generations.map(generationItem) }
        }))
      .handle("download", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const output = yield* mixer.output(user.id, path.generationId, path.fileIndex)
          const request = yield* HttpServerRequest.HttpServerRequest
          return yield* serveFile({
            storageKey: output.key,
            size: output.size,
            mime: "video/mp4",
            name: `generated_video_${path.fileIndex + 1}`,
            extension: "mp4"
          }, request.headers["range"])
        }))
      .handle("downloadAll", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const outputs = yield* mixer.outputs(user.id, path.generationId)
          return yield* serveZip(
            `generation_${path.generationId}.zip`,
            outputs.map((output, i) => ({ name: `video_${i + 1}.mp4`, storageKey: output.key }))
          )
        }))
      .handle("stats", () =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          return { success: true as const, ...(yield* mixer.stats(user.id)) }
        }))
  }))
