import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** The file is larger than its kind allows; counted while it streams, so nothing past the limit is read or kept. */
export class UploadTooLarge extends Schema.TaggedError<UploadTooLarge>()(
  "UploadTooLarge",
  { message: Schema.String, kind: Schema.String, limitBytes: Schema.Number },
  HttpApiSchema.annotations({ status: 413 })
) {}

/** The user's stored files plus this one would pass their quota; nothing was written. */
export class StorageQuotaExceeded extends Schema.TaggedError<StorageQuotaExceeded>()(
  "StorageQuotaExceeded",
  { message: Schema.String, used: Schema.Number, quota: Schema.Number, available: Schema.Number, fileSize: Schema.Number },
  HttpApiSchema.annotations({ status: 413 })
) {}

/** The file's content (its magic bytes, never its name or declared type) is not one this kind accepts. */
export class UnsupportedFileType extends Schema.TaggedError<UnsupportedFileType>()(
  "UnsupportedFileType",
  { message: Schema.String, kind: Schema.String, allowed: Schema.Array(Schema.String) },
  HttpApiSchema.annotations({ status: 415 })
) {}

/** The file has the right signature but is not usable media: truncated, no expected stream, a duration out of bounds. */
export class UnreadableMedia extends Schema.TaggedError<UnreadableMedia>()(
  "UnreadableMedia",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 422 })
) {}

/** The multipart body has no file part of the expected name, or a field the route does not take. */
export class InvalidUpload extends Schema.TaggedError<InvalidUpload>()(
  "InvalidUpload",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** No upload with this id belongs to the caller (someone else's answers the same: no probing). */
export class UploadNotFound extends Schema.TaggedError<UploadNotFound>()(
  "UploadNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}
