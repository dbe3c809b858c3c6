import { adminSection } from "./admin.js"
import { authSection } from "./auth.js"
import { corsSection } from "./cors.js"
import { databaseSection } from "./database.js"
import { duitkuSection } from "./duitku.js"
import { ffmpegSection } from "./ffmpeg.js"
import { healthSection } from "./health.js"
import { httpSection } from "./http.js"
import { jobsSection } from "./jobs.js"
import { logSection } from "./log.js"
import { processSection } from "./process.js"
import { rateLimitsSection } from "./rateLimits.js"
import { redisSection } from "./redis.js"
import { shutdownSection } from "./shutdown.js"
import { storageSection } from "./storage.js"
import { telemetrySection } from "./telemetry.js"
import { websocketSection } from "./websocket.js"
import { uploadsSection } from "./uploads.js"
import { videoMixerSection } from "./videoMixer.js"
import { imagesSection } from "./images.js"

/**
 * Every configuration section, in the order they are read and documented; keyed like AppConfigShape.
 * A new section is one line here and one in AppConfigLive's shape.
 */
export const sections = {
  process: processSection,
  http: httpSection,
  shutdown: shutdownSection,
  log: logSection,
  database: databaseSection,
  redis: redisSection,
  storage: storageSection,
  uploads: uploadsSection,
  ffmpeg: ffmpegSection,
  auth: authSection,
  duitku: duitkuSection,
  cors: corsSection,
  rateLimits: rateLimitsSection,
  health: healthSection,
  jobs: jobsSection,
  admin: adminSection,
  websocket: websocketSection,
  videoMixer: videoMixerSection,
  images: imagesSection,
  telemetry: telemetrySection
} as const
