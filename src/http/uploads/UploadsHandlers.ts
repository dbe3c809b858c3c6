import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Effect } from "effect"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { type Upload, Uploads } from "../../services/uploads/Uploads.js"
import { Api } from "../Api.js"
import { RateLimitGuard } from "../platform/RateLimitGuard.js"
import { serveFile } from "./download.js"

export const uploadItem = (upload: Upload) => ({
  id: upload.id,
  kind: upload.kind,
  name: upload.name,
  mime: upload.mime,
  size: upload.size,
  durationSeconds: upload.durationSeconds,
  width: upload.width,
  height: upload.height,
  downloadUrl: `/api/uploads/${upload.id}/download`,
  createdAt: upload.createdAt.toISOString()
})

/** The request's declared length, when it has a sane one (the quota reserves it, capped at the kind's limit). */
export const declaredLength = (request: HttpServerRequest.HttpServerRequest): number | undefined => {
  const header = request.headers["content-length"]
  return header !== undefined && /^\d{1,15}$/.test(header) ? Number(header) : undefined
}

export const UploadsHandlers = HttpApiBuilder.group(Api, "uploads", (handlers) =>
  Effect.gen(function*() {
    const uploads = yield* Uploads
    const guard = yield* RateLimitGuard
    return handlers
      .handle("upload", ({ path, payload }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* guard.enforce("upload", `user:${user.id}`)
          const request = yield* HttpServerRequest.HttpServerRequest
          const { upload, storageUsed } = yield* uploads.receive({
            userId: user.id,
            kind: path.kind,
            parts: payload,
            declaredBytes: declaredLength(request)
          }).pipe(
            // a body the client got wrong: the error envelope answers it (400, or 413 at a parser limit)
            Effect.catchTag("MultipartError", Effect.die)
          )
          return { success: true as const, upload: uploadItem(upload), storageUsed }
        }))
      .handle("download", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const upload = yield* uploads.find(user.id, path.id)
          const request = yield* HttpServerRequest.HttpServerRequest
          return yield* serveFile(upload, request.headers["range"])
        }))
      .handle("remove", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const removed = yield* uploads.remove(user.id, path.id)
          return { success: true as const, ...removed }
        }))
  }))
