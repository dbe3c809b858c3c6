import { Data, Effect } from "effect"
import { fileTypeFromBuffer } from "file-type"
import type Sharp from "sharp"
import type { ImageFormat } from "./ImageGenerator.js"

/** The bytes are not a usable image of an accepted format (truncated, corrupt, or another type). */
export class ImageUnreadable extends Data.TaggedError("ImageUnreadable")<{ readonly reason: string }> {
  override get message() {
    return `unreadable image: ${this.reason}`
  }
}

/** The stored extension and media type of each accepted format. */
export const imageFormats: Readonly<Record<ImageFormat, { readonly extension: string; readonly mime: string }>> = {
  png: { extension: "png", mime: "image/png" },
  jpeg: { extension: "jpg", mime: "image/jpeg" },
  webp: { extension: "webp", mime: "image/webp" }
}

/**
 * sharp (libvips, a native library of tens of MB) is loaded on first use, not at startup: most
 * processes never touch an image, and loading it is a noticeable share of a cold start.
 */
let loading: Promise<typeof Sharp> | undefined
/** A library that fails to load is a server fault (a defect), never the image's. */
const withSharp = <A>(use: (sharp: typeof Sharp) => Promise<A>, reason: string): Effect.Effect<A, ImageUnreadable> =>
  Effect.promise(() => (loading ??= import("sharp").then((module) => module.default))).pipe(
    Effect.flatMap((sharp) => Effect.tryPromise({ try: () => use(sharp), catch: () => new ImageUnreadable({ reason }) }))
  )

const byMime: Readonly<Record<string, ImageFormat>> = { "image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp" }

/** The format by magic bytes (file-type), never by a declared type; undefined for anything else. */
export const detectImageFormat = (bytes: Uint8Array): Effect.Effect<ImageFormat | undefined> =>
  Effect.promise(() => fileTypeFromBuffer(bytes).catch(() => undefined)).pipe(
    Effect.map((type) => (type === undefined ? undefined : byMime[type.mime]))
  )

export interface ImageHeader {
  readonly width: number
  readonly height: number
  readonly format: string
}

/**
 * The dimensions from the image's header only: nothing is decoded, so a header claiming 100000x100000
 * costs nothing (sharp's pixel limit is off here, and applies where pixels are decoded, below).
 */
export const readImageHeader = (input: string | Uint8Array): Effect.Effect<ImageHeader, ImageUnreadable> =>
  withSharp((sharp) => sharp(input, { limitInputPixels: false }).metadata(), "its header could not be read").pipe(
    Effect.flatMap((meta) =>
      meta.width === undefined || meta.height === undefined || meta.width < 1 || meta.height < 1
        ? Effect.fail(new ImageUnreadable({ reason: "it has no dimensions" }))
        : Effect.succeed({ width: meta.width, height: meta.height, format: meta.format ?? "unknown" })
    )
  )

const encoder = (image: Sharp.Sharp, format: ImageFormat) =>
  format === "png" ? image.png() : format === "jpeg" ? image.jpeg({ quality: 90, mozjpeg: true }) : image.webp({ quality: 90 })

/**
 * Decodes (at most `maxPixels`: a pixel flood is refused, not decoded) and encodes again in the same
 * format: EXIF orientation is applied, then every metadata block (EXIF with GPS, XMP, comments) is
 * dropped, since sharp writes none unless asked.
 */
export const reencodeImage = (input: string | Uint8Array, format: ImageFormat, maxPixels: number) =>
  withSharp((sharp) => encoder(sharp(input, { limitInputPixels: maxPixels, failOn: "error" }).rotate(), format).toBuffer(), "it could not be decoded")

export const THUMBNAIL_SIDE = 300

/** A 300x300 crop of the middle (cover), in `format`, so its bytes match the extension it is stored under. */
export const thumbnailOf = (input: Uint8Array, format: ImageFormat, maxPixels: number) =>
  withSharp(
    (sharp) =>
      encoder(
        sharp(input, { limitInputPixels: maxPixels, failOn: "error" }).rotate().resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: "cover" }),
        format
      ).toBuffer(),
    "its thumbnail could not be made"
  )
