import { randomUUID } from "node:crypto"
import * as path from "node:path"
import { FileSystem, type Multipart } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { type Chunk, Effect, Sink, Stream } from "effect"
import { fileTypeFromFile } from "file-type"
import { AppConfig } from "../platform/AppConfig.js"
import { Ffmpeg } from "../platform/Ffmpeg.js"
import { Storage } from "../platform/Storage.js"
import { ImageUnreadable, readImageHeader, reencodeImage } from "../images/imageFiles.js"
import type { ImageFormat } from "../images/ImageGenerator.js"
import { displayName } from "./fileName.js"
import { StorageQuota } from "./StorageQuota.js"
import { InvalidUpload, UnreadableMedia, UnsupportedFileType, UploadNotFound, UploadTooLarge } from "./UploadError.js"
import { allowedNames, allowedType, probeProblem, type UploadKind } from "./uploadKinds.js"

/** One stored file, as the owner sees it. */
export interface Upload {
  readonly id: string
  readonly userId: string
  readonly kind: UploadKind
  readonly storageKey: string
  readonly size: number
  readonly mime: string
  readonly extension: string
  /** The client's name, sanitised, without extension: for display and Content-Disposition only. */
  readonly name: string
  readonly durationSeconds: number | null
  readonly width: number | null
  readonly height: number | null
  readonly createdAt: Date
}

interface UploadRow {
  readonly id: string
  readonly user_id: string
  readonly kind: UploadKind
  readonly storage_key: string
  readonly size_bytes: string
  readonly mime: string
  readonly extension: string
  readonly original_name: string
  readonly duration_seconds: number | null
  readonly width: number | null
  readonly height: number | null
  readonly created_at: Date
}

const toUpload = (r: UploadRow): Upload => ({
  id: r.id,
  userId: r.user_id,
  kind: r.kind,
  storageKey: r.storage_key,
  size: Number(r.size_bytes),
  mime: r.mime,
  extension: r.extension,
  name: r.original_name,
  durationSeconds: r.duration_seconds,
  width: r.width,
  height: r.height,
  createdAt: r.created_at
})

export interface ReceiveInput<E = never, R = never> {
  readonly userId: string
  readonly kind: UploadKind
  /** The request's multipart parts, read once, in order. */
  readonly parts: Stream.Stream<Multipart.Part, Multipart.MultipartError>
  /**
   * The request's Content-Length when it has one: the file cannot be larger, so this (capped at the kind's
   * limit) is what is reserved from the quota. Without it the kind's limit is reserved. The unused part is
   * released once the file is stored.
   */
  readonly declaredBytes?: number | undefined
  /** The file part's name; default "file". */
  readonly fileField?: string
  /** Text fields the route accepts (they must come before the file); any other is 400. */
  readonly fields?: ReadonlyArray<string>
  /** Runs on the fields before anything is reserved or written (an app checks project ownership here). */
  readonly beforeStore?: (fields: Readonly<Record<string, string>>) => Effect.Effect<void, E, R>
  /**
   * Images only: each side must be within these bounds, read from the header before anything is
   * decoded (so a pixel flood is refused for free), and the image is then decoded (at most
   * maxSide x maxSide pixels) and encoded again in its format, which drops its metadata (EXIF, GPS).
   */
  readonly image?: { readonly minSide: number; readonly maxSide: number }
}

export interface Received {
  readonly upload: Upload
  readonly fields: Readonly<Record<string, string>>
  /** The user's storage use after this upload. */
  readonly storageUsed: number
}

const PROBE_TIMEOUT = "30 seconds"
const DETECT_TIMEOUT = "5 seconds"
const MAX_FIELD_CHARS = 4096
const IMAGE_FORMATS: Readonly<Record<string, ImageFormat>> = { "image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp" }

/**
 * The one upload pipeline every app uses: a multipart file streamed (never buffered whole) to a private
 * temporary file while its size is counted against its kind's limit, typed by its magic bytes against
 * the kind's allowlist, probed with ffprobe (video and audio), then stored under a server-chosen key and
 * recorded. The quota is reserved before the first byte is written. Any failure, interruption included,
 * leaves nothing behind: the temporary directory is scoped, the stored object is deleted, the
 * reservation released.
 */
export class Uploads extends Effect.Service<Uploads>()("app/Uploads", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const config = yield* AppConfig
    const storage = yield* Storage
    const ffmpeg = yield* Ffmpeg
    const fs = yield* FileSystem.FileSystem
    const quota = yield* StorageQuota

    /** Streams the part to `file`, failing at the first byte over `cap`; returns the size. */
    const writeCounted = (part: Multipart.File, file: string, kind: UploadKind, limit: number, cap: number) =>
      Effect.gen(function*() {
        let size = 0
        const counted = part.content.pipe(Stream.mapChunksEffect((chunk: Chunk.Chunk<Uint8Array>): Effect.Effect<Chunk.Chunk<Uint8Array>, UploadTooLarge | InvalidUpload> => {
          for (const bytes of chunk) size += bytes.byteLength
          if (size <= cap) return Effect.succeed(chunk)
          return size > limit
            ? Effect.fail(new UploadTooLarge({ message: `The ${kind} is larger than the limit of ${limit} bytes`, kind, limitBytes: limit }))
            : Effect.fail(new InvalidUpload({ message: "The file is larger than the request's declared length" }))
        }))
        const sink = fs.sink(file).pipe(Sink.mapError((error) => error as never)) // a local write failing is a server fault
        yield* Stream.run(counted, sink)
        return size
      })

    /** Types and probes the written file; what it is stored as. */
    const inspect = (file: string, kind: UploadKind, size: number) =>
      Effect.gen(function*() {
        const refused = (message: string) => new UnsupportedFileType({ message, kind, allowed: allowedNames(kind) })
        if (size === 0) return yield* refused("The file is empty")
        // file-type is a parser of hostile bytes: bounded in time (a malformed file once looped it forever)
        const detected = yield* Effect.promise(() => fileTypeFromFile(file).catch(() => undefined)).pipe(
          Effect.timeoutTo({ duration: DETECT_TIMEOUT, onSuccess: (type) => type, onTimeout: () => undefined })
        )
        const type = allowedType(kind, detected?.mime)
        if (type === undefined) {
          return yield* refused(`The file's content is not an accepted ${kind} (${allowedNames(kind).join(", ")})`)
        }
        if (type.demuxer === undefined) return { type, durationSeconds: null, width: null, height: null }
        const probe = yield* ffmpeg.probe(file, { format: type.demuxer, timeout: PROBE_TIMEOUT }).pipe(
          Effect.catchAll((error) =>
            error._tag === "FfmpegTimeout" || error.reason === "probe"
              ? Effect.fail(new UnreadableMedia({ message: `The ${kind} could not be read as media` }))
              : Effect.die(error)
          )
        )
        const problem = probeProblem(kind, probe, config.uploads.maxDurationSeconds)
        if (problem !== undefined) return yield* new UnreadableMedia({ message: `The ${kind} was refused: ${problem}` })
        const video = probe.streams.find((s) => s.codecType === "video")
        return { type, durationSeconds: probe.durationSeconds, width: video?.width ?? null, height: video?.height ?? null }
      })

    /** The header's dimensions within the bounds (422 otherwise), then the image re-encoded without its metadata. */
    const normalizeImage = (file: string, format: ImageFormat, bounds: { readonly minSide: number; readonly maxSide: number }) =>
      Effect.gen(function*() {
        const header = yield* readImageHeader(file)
        const { width, height } = header
        if (width < bounds.minSide || height < bounds.minSide || width > bounds.maxSide || height > bounds.maxSide) {
          return yield* new UnreadableMedia({
            message: `The image is ${width}x${height} pixels; each side must be ${bounds.minSide} to ${bounds.maxSide} pixels`
          })
        }
        const bytes = yield* reencodeImage(file, format, bounds.maxSide * bounds.maxSide)
        return { bytes, width, height }
      }).pipe(
        Effect.catchTag("ImageUnreadable", (error: ImageUnreadable) =>
          Effect.fail(new UnreadableMedia({ message: `The image was refused: ${error.reason}` })))
      )

    const receive = <E = never, R = never>(input: ReceiveInput<E, R>) =>
      Effect.gen(function*() {
        const limit = config.uploads.maxBytes[input.kind]
        const fileField = input.fileField ?? "file"
        const accepted = new Set(input.fields ?? [])
        const fields: Record<string, string> = {}
        // What a failure must undo; set as each step succeeds.
        let reserved = 0
        let storedKey: string | undefined
        let staged: Omit<Upload, "id" | "createdAt"> | undefined

        const undo = Effect.gen(function*() {
          if (storedKey !== undefined) yield* storage.delete(storedKey).pipe(Effect.ignoreLogged)
          yield* quota.release(input.userId, reserved)
        })

        const onFile = (part: Multipart.File) =>
          Effect.scoped(Effect.gen(function*() {
            if (part.key !== fileField || staged !== undefined) {
              return yield* new InvalidUpload({ message: `Send exactly one file, in the field "${fileField}"` })
            }
            if (input.beforeStore !== undefined) yield* input.beforeStore(fields)
            const cap = Math.min(limit, input.declaredBytes ?? limit)
            yield* quota.reserve(input.userId, cap)
            reserved = cap
            const dir = yield* ffmpeg.tempDir.pipe(Effect.orDie)
            const file = path.join(dir, "upload")
            let size = yield* writeCounted(part, file, input.kind, limit, cap)
            const { type, ...inspected } = yield* inspect(file, input.kind, size)
            let media: { durationSeconds: number | null; width: number | null; height: number | null } = inspected
            const format = IMAGE_FORMATS[type.mime]
            if (input.image !== undefined && format !== undefined) {
              const normalized = yield* normalizeImage(file, format, input.image)
              yield* fs.writeFile(file, normalized.bytes).pipe(Effect.orDie)
              // A re-encoded image may be larger than the original: the difference is reserved too.
              if (normalized.bytes.byteLength > reserved) {
                yield* quota.reserve(input.userId, normalized.bytes.byteLength - reserved)
                reserved = normalized.bytes.byteLength
              }
              size = normalized.bytes.byteLength
              media = { ...inspected, width: normalized.width, height: normalized.height }
            }
            const key = `uploads/${input.userId}/${randomUUID()}.${type.extension}`
            yield* storage.put(key, fs.stream(file).pipe(Stream.orDie), { contentType: type.mime }).pipe(Effect.orDie)
            storedKey = key
            staged = {
              userId: input.userId,
              kind: input.kind,
              storageKey: key,
              size,
              mime: type.mime,
              extension: type.extension,
              name: displayName(part.name),
              ...media
            }
          }))

        const onField = (part: Multipart.Field) =>
          Effect.gen(function*() {
            if (staged !== undefined || !accepted.has(part.key) || part.value.length > MAX_FIELD_CHARS) {
              return yield* new InvalidUpload({
                message: `Unexpected field "${part.key.slice(0, 64)}": send ${[...accepted].join(", ") || "no fields"} before the file`
              })
            }
            fields[part.key] = part.value
          })

        return yield* Effect.gen(function*() {
          yield* Stream.runForEach(input.parts, (part) => part._tag === "File" ? onFile(part) : onField(part))
          const file = staged
          if (file === undefined) return yield* new InvalidUpload({ message: `The request has no file in the field "${fileField}"` })
          const row = yield* sql.withTransaction(Effect.gen(function*() {
            const rows = yield* sql<UploadRow>`
              INSERT INTO uploads (user_id, kind, storage_key, size_bytes, mime, extension, original_name, duration_seconds, width, height)
              VALUES (${file.userId}, ${file.kind}, ${file.storageKey}, ${file.size}::bigint, ${file.mime}, ${file.extension},
                      ${file.name}, ${file.durationSeconds}, ${file.width}, ${file.height})
              RETURNING *`
            // the part of the reservation the file did not use, in the same transaction as its row
            yield* quota.release(file.userId, reserved - file.size)
            return rows[0]!
          })).pipe(Effect.orDie)
          reserved = 0
          storedKey = undefined
          const { used } = yield* quota.usage(input.userId)
          return { upload: toUpload(row), fields, storageUsed: used } satisfies Received
        }).pipe(Effect.onError(() => Effect.uninterruptible(undo)))
      }).pipe(Effect.withSpan("Uploads.receive", { attributes: { kind: input.kind } }))

    /** The caller's upload; someone else's is not found, the same as a missing one. */
    const find = Effect.fn("Uploads.find")(function*(userId: string, id: string) {
      const rows = yield* sql<UploadRow>`SELECT * FROM uploads WHERE id = ${id} AND user_id = ${userId}`.pipe(Effect.orDie)
      const row = rows[0]
      if (row === undefined) return yield* new UploadNotFound({ message: "No such upload" })
      return toUpload(row)
    })

    /** Deletes the caller's upload: row and quota in one transaction, then the stored object. */
    const remove = Effect.fn("Uploads.remove")(function*(userId: string, id: string) {
      const removed = yield* sql.withTransaction(Effect.gen(function*() {
        const rows = yield* sql<UploadRow>`DELETE FROM uploads WHERE id = ${id} AND user_id = ${userId} RETURNING *`
        const row = rows[0]
        if (row !== undefined) yield* quota.release(userId, Number(row.size_bytes))
        return row
      })).pipe(Effect.orDie)
      if (removed === undefined) return yield* new UploadNotFound({ message: "No such upload" })
      yield* storage.delete(removed.storage_key).pipe(
        Effect.catchAll((error) => Effect.logWarning("uploads: stored object left after delete", { key: removed.storage_key, error: error.message }))
      )
      const { used } = yield* quota.usage(userId)
      return { freedSpace: Number(removed.size_bytes), storageUsed: used }
    })

    return { receive, find, remove, usage: quota.usage }
  }),
  dependencies: [StorageQuota.Default]
}) {}
