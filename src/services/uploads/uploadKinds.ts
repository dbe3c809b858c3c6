import { Schema } from "effect"
import type { ProbeResult } from "../platform/Ffmpeg.js"

export const UploadKind = Schema.Literal("video", "audio", "image").annotations({
  message: () => "kind must be one of video, audio, image"
})
export type UploadKind = typeof UploadKind.Type

/** What a detected type becomes: its stored extension and the demuxer ffprobe must read it with. */
interface AllowedType {
  readonly mime: string
  readonly extension: string
  /** ffprobe `-f`; undefined for images, which are not probed. */
  readonly demuxer?: string
}

/**
 * Per kind, the file-type results accepted, keyed by file-type's `mime`. Nothing textual (HTML, SVG,
 * playlists, concat lists) can be here: file-type recognises binary signatures only.
 */
export const ALLOWED: Readonly<Record<UploadKind, Readonly<Record<string, AllowedType>>>> = {
  video: {
    "video/mp4": { mime: "video/mp4", extension: "mp4", demuxer: "mov" },
    "video/quicktime": { mime: "video/quicktime", extension: "mov", demuxer: "mov" },
    "video/webm": { mime: "video/webm", extension: "webm", demuxer: "matroska" },
    "video/x-matroska": { mime: "video/x-matroska", extension: "mkv", demuxer: "matroska" }
  },
  audio: {
    "audio/mpeg": { mime: "audio/mpeg", extension: "mp3", demuxer: "mp3" },
    "audio/wav": { mime: "audio/wav", extension: "wav", demuxer: "wav" },
    "audio/ogg": { mime: "audio/ogg", extension: "ogg", demuxer: "ogg" },
    "audio/x-m4a": { mime: "audio/mp4", extension: "m4a", demuxer: "mov" },
    "audio/aac": { mime: "audio/aac", extension: "aac", demuxer: "aac" },
    "audio/x-flac": { mime: "audio/flac", extension: "flac", demuxer: "flac" }
  },
  image: {
    "image/png": { mime: "image/png", extension: "png" },
    "image/jpeg": { mime: "image/jpeg", extension: "jpg" },
    "image/webp": { mime: "image/webp", extension: "webp" }
  }
}

export const allowedType = (kind: UploadKind, detectedMime: string | undefined): AllowedType | undefined =>
  detectedMime === undefined ? undefined : ALLOWED[kind][detectedMime]

export const allowedNames = (kind: UploadKind): ReadonlyArray<string> => Object.values(ALLOWED[kind]).map((t) => t.extension)

/** 8K UHD: a larger frame is refused before anything decodes it (a pixel flood). */
export const MAX_VIDEO_PIXELS = 7680 * 4320

/** What a probe must show for the kind, or why it is refused. */
export const probeProblem = (kind: UploadKind, probe: ProbeResult, maxDurationSeconds: number): string | undefined => {
  const expected = kind === "video" ? "video" : "audio"
  if (!probe.streams.some((s) => s.codecType === expected)) return `the file has no ${expected} stream`
  if (!(probe.durationSeconds > 0)) return "the file has no positive duration"
  const oversized = probe.streams.find((s) => s.codecType === "video" && (s.width ?? 0) * (s.height ?? 0) > MAX_VIDEO_PIXELS)
  if (oversized !== undefined) return `a ${oversized.width}x${oversized.height} frame is larger than 8K (7680x4320)`
  if (probe.durationSeconds > maxDurationSeconds) {
    return `the file lasts ${Math.round(probe.durationSeconds)} s, longer than the limit of ${Math.round(maxDurationSeconds)} s`
  }
  return undefined
}
