import { Duration } from "effect"
import { section } from "./section.js"
import { duration, integer } from "./variable.js"

const MB = 1000 * 1000

/** Room for the multipart framing and the form's small fields around the one file of an upload request. */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024

export const uploadsSection = section("Uploads", {
  videoMaxBytes: integer({
    name: "UPLOAD_VIDEO_MAX_BYTES",
    min: 1024,
    max: 10 * 1024 * MB,
    default: 100 * MB,
    description: "largest video upload; one byte more is 413, counted while it streams"
  }),
  audioMaxBytes: integer({
    name: "UPLOAD_AUDIO_MAX_BYTES",
    min: 1024,
    max: 10 * 1024 * MB,
    default: 20 * MB,
    description: "largest audio upload"
  }),
  imageMaxBytes: integer({
    name: "UPLOAD_IMAGE_MAX_BYTES",
    min: 1024,
    max: 10 * 1024 * MB,
    default: 10 * MB,
    description: "largest image upload"
  }),
  maxDuration: duration({
    name: "UPLOAD_MAX_DURATION",
    default: "1 hour",
    description: "longest video or audio upload (ffprobe's duration); longer is 422"
  }),
  quotaBytes: integer({
    name: "STORAGE_QUOTA_BYTES",
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    default: 1024 * 1024 * 1024,
    description: "storage each user may fill with uploads (a user's own quota row overrides it)"
  })
}, (v) => {
  const maxBytes = { video: v.videoMaxBytes, audio: v.audioMaxBytes, image: v.imageMaxBytes }
  return {
    maxBytes,
    maxDurationSeconds: Duration.toSeconds(v.maxDuration),
    quotaBytes: v.quotaBytes,
    /** The body limit of the upload routes (instead of BODY_LIMIT_BYTES): the largest file plus its form. */
    requestLimitBytes: Math.max(...Object.values(maxBytes)) + MULTIPART_OVERHEAD_BYTES
  }
})
