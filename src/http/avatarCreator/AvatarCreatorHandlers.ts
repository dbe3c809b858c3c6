import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Effect } from "effect"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { AvatarCreator } from "../../services/avatarCreator/AvatarCreator.js"
import { Api } from "../Api.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"
import { serveFile } from "../uploads/download.js"
import { declaredLength } from "../uploads/UploadsHandlers.js"

/** The route limits of this app are keyed apart from other apps' (the old `rl:avatar-creator:*:user:<id>`). */
const keyOf = (userId: string) => `avatar-creator:user:${userId}`

export const AvatarCreatorHandlers = HttpApiBuilder.group(Api, "avatarCreator", (handlers) =>
  Effect.gen(function*() {
    const avatars = yield* AvatarCreator
    const guard = yield* RateLimitGuard
    const ok = { success: true as const }
    const serve = (id: string, which: "image" | "thumbnail") =>
      Effect.gen(function*() {
        const user = yield* CurrentUser
        const file = yield* avatars.avatarFile(user.id, id, which)
        const request = yield* HttpServerRequest.HttpServerRequest
        return yield* serveFile(file, request.headers["range"])
      })
    return handlers
      .handle("listProjects", () => Effect.map(CurrentUser, (user) => user.id).pipe(
        Effect.flatMap(avatars.listProjects),
        Effect.map((projects) => ({ ...ok, projects }))
      ))
      .handle("createProject", ({ payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("projectCreate", keyOf(user.id))
          const project = yield* avatars.createProject(user.id, payload)
          return { ...ok, message: "Project created", project }
        }))
      .handle("getProject", ({ path }) =>
        Effect.flatMap(CurrentUser, (user) => avatars.getProject(user.id, path.id)).pipe(Effect.map((project) => ({ ...ok, project }))))
      .handle("updateProject", ({ path, payload }) =>
        Effect.flatMap(CurrentUser, (user) => avatars.updateProject(user.id, path.id, payload)).pipe(Effect.map((project) => ({ ...ok, project }))))
      .handle("deleteProject", ({ path }) =>
        Effect.flatMap(CurrentUser, (user) => avatars.deleteProject(user.id, path.id)).pipe(Effect.as({ ...ok, message: "Project deleted" })))
      .handle("upload", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("upload", keyOf(user.id))
          const request = yield* HttpServerRequest.HttpServerRequest
          const result = yield* avatars.upload({
            userId: user.id,
            projectId: path.projectId,
            parts: payload,
            declaredBytes: declaredLength(request)
          }).pipe(Effect.catchTag("MultipartError", Effect.die))
          return { ...ok, message: "Avatar uploaded", ...result }
        }))
      .handle("generate", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("ai", keyOf(user.id))
          return { ...ok, ...(yield* avatars.generate(user.id, path.projectId, { mode: "text", input: payload })) }
        }))
      .handle("fromPreset", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("preset", keyOf(user.id))
          return {
            ...ok,
            ...(yield* avatars.generate(user.id, path.projectId, { mode: "preset", presetId: payload.presetId, customName: payload.customName }))
          }
        }))
      .handle("generation", ({ path }) =>
        Effect.flatMap(CurrentUser, (user) => avatars.generation(user.id, path.id)).pipe(Effect.map((generation) => ({ ...ok, generation }))))
      .handle("listAvatars", () =>
        Effect.flatMap(CurrentUser, (user) => avatars.listAvatars(user.id)).pipe(Effect.map((list) => ({ ...ok, avatars: list }))))
      .handle("getAvatar", ({ path }) =>
        Effect.flatMap(CurrentUser, (user) => avatars.getAvatar(user.id, path.id)).pipe(Effect.map((avatar) => ({ ...ok, avatar }))))
      .handle("updateAvatar", ({ path, payload }) =>
        Effect.flatMap(CurrentUser, (user) => avatars.updateAvatar(user.id, path.id, payload)).pipe(Effect.map((avatar) => ({ ...ok, avatar }))))
      .handle("deleteAvatar", ({ path }) =>
        Effect.flatMap(CurrentUser, (user) => avatars.deleteAvatar(user.id, path.id)).pipe(Effect.as({ ...ok, message: "Avatar deleted" })))
      .handle("avatarImage", ({ path }) => serve(path.id, "image"))
      .handle("avatarThumbnail", ({ path }) => serve(path.id, "thumbnail"))
      .handle("usageHistory", ({ path }) =>
        Effect.flatMap(CurrentUser, (user) => avatars.usageHistory(user.id, path.id)).pipe(Effect.map((usage) => ({ ...ok, ...usage }))))
      .handle("stats", () => Effect.flatMap(CurrentUser, (user) => avatars.stats(user.id)).pipe(Effect.map((stats) => ({ ...ok, ...stats }))))
  }))

export const AvatarPresetsHandlers = HttpApiBuilder.group(Api, "avatarPresets", (handlers) =>
  Effect.gen(function*() {
    const avatars = yield* AvatarCreator
    return handlers
      .handle("presets", ({ urlParams }) => Effect.map(avatars.presets(urlParams.category), (presets) => ({ success: true as const, presets })))
      .handle("preset", ({ path }) => Effect.map(avatars.preset(path.id), (preset) => ({ success: true as const, preset })))
      .handle("health", () =>
        Effect.succeed({
          success: true as const,
          app: "avatar-creator" as const,
          status: "ok" as const,
          imageGenerationConfigured: avatars.configured
        }))
  }))
