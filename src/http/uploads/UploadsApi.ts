import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Option, Schema } from "effect"
import { Authentication } from "../accounts/Authentication.js"
import { RateLimited, ServiceUnavailable } from "../platform/ApiError.js"
import {
  InvalidUpload,
  StorageQuotaExceeded,
  UnreadableMedia,
  UnsupportedFileType,
  UploadNotFound,
  UploadTooLarge
} from "../../services/uploads/UploadError.js"
import { UploadKind } from "../../services/uploads/uploadKinds.js"

/** One stored file as its owner sees it (never its storage key or a public URL: files are private). */
export const UploadItem = Schema.Struct({
  id: Schema.String,
  kind: UploadKind,
  name: Schema.String,
  mime: Schema.String,
  size: Schema.Number,
  durationSeconds: Schema.NullOr(Schema.Number),
  width: Schema.NullOr(Schema.Number),
  height: Schema.NullOr(Schema.Number),
  downloadUrl: Schema.String,
  createdAt: Schema.String
}).annotations({ identifier: "Upload" })

const Id = Schema.UUID.annotations({ message: () => "the upload id must be a UUID" })

/**
 * Multipart limits of the parser itself: a few small fields and one file. The body's total is bounded
 * before the parser (bodyLimit.ts gives upload routes their own limit) and the file by its kind's limit,
 * counted while it streams (services/uploads/Uploads.ts).
 */
export const uploadMultipartLimits = {
  maxParts: Option.some(16),
  maxFieldSize: 16 * 1024,
  maxFileSize: Option.none(),
  maxTotalSize: Option.none()
}

/** The generic upload routes: any app may use them, or call the same pipeline from its own route. */
export class UploadsApi extends HttpApiGroup.make("uploads")
  .add(
    HttpApiEndpoint.post("upload", "/uploads/:kind")
      .setPath(Schema.Struct({ kind: UploadKind }))
      .setPayload(HttpApiSchema.MultipartStream(Schema.Struct({}), uploadMultipartLimits))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), upload: UploadItem, storageUsed: Schema.Number }), { status: 201 })
      .addError(UploadTooLarge)
      .addError(StorageQuotaExceeded)
      .addError(UnsupportedFileType)
      .addError(UnreadableMedia)
      .addError(InvalidUpload)
      .annotate(
        OpenApi.Description,
        "multipart/form-data with one part `file`. Typed by its content against the kind's allowlist, probed, stored privately."
      )
  )
  .add(
    HttpApiEndpoint.get("download", "/uploads/:id/download")
      .setPath(Schema.Struct({ id: Id }))
      .addSuccess(Schema.Uint8ArrayFromSelf.pipe(HttpApiSchema.withEncoding({ kind: "Uint8Array", contentType: "application/octet-stream" })))
      .annotate(OpenApi.Description, "The owner's file, streamed; supports a single Range (206, 416).")
  )
  .add(
    HttpApiEndpoint.del("remove", "/uploads/:id")
      .setPath(Schema.Struct({ id: Id }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), freedSpace: Schema.Number, storageUsed: Schema.Number }))
  )
  .addError(UploadNotFound)
  .addError(RateLimited)
  .addError(ServiceUnavailable)
  .middleware(Authentication)
  .prefix("/api")
  .annotate(OpenApi.Title, "Uploads") {}
