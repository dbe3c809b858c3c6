import { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { type ByteRange, Storage } from "../../services/platform/Storage.js"
import { contentDisposition } from "../../services/uploads/fileName.js"

export interface DownloadableFile {
  readonly storageKey: string
  readonly size: number
  readonly mime: string
  /** Shown to the user; sanitised (services/uploads/fileName.ts). */
  readonly name: string
  readonly extension: string
}

/**
 * A single `bytes=` range of a file of `size` bytes: the range, "unsatisfiable", or undefined to send
 * the whole file (no header, several ranges, or a header we do not understand, as RFC 9110 allows).
 */
export const parseRange = (header: string | undefined, size: number): ByteRange | "unsatisfiable" | undefined => {
  if (header === undefined) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (match === null) return undefined
  const [, from = "", to = ""] = match
  if (from === "" && to === "") return undefined
  if (from === "") {
    const suffix = Number(to)
    if (suffix === 0 || size === 0) return "unsatisfiable"
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(from)
  if (start >= size) return "unsatisfiable"
  const end = to === "" ? size - 1 : Math.min(Number(to), size - 1)
  if (end < start) return "unsatisfiable"
  return { start, end }
}

/**
 * Streams a private file to its (already authorised) owner: Content-Length, a single Range (206, or 416
 * with `Content-Range: bytes * /size`), an attachment disposition, and nosniff so a browser never renders
 * it as anything but its type. Any app route serving a stored file uses this.
 */
export const serveFile = (file: DownloadableFile, rangeHeader: string | undefined) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const headers = {
      "accept-ranges": "bytes",
      "content-disposition": contentDisposition(file.name, file.extension),
      "x-content-type-options": "nosniff",
      "cache-control": "private, no-store"
    }
    const range = parseRange(rangeHeader, file.size)
    if (range === "unsatisfiable") {
      return HttpServerResponse.empty({ status: 416, headers: { ...headers, "content-range": `bytes */${file.size}` } })
    }
    const body = yield* storage.get(file.storageKey, range).pipe(Effect.orDie)
    return HttpServerResponse.stream(body, {
      status: range === undefined ? 200 : 206,
      contentType: file.mime,
      contentLength: range === undefined ? file.size : range.end - range.start + 1,
      headers: range === undefined ? headers : { ...headers, "content-range": `bytes ${range.start}-${range.end}/${file.size}` }
    })
  })
