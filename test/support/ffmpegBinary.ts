import { Effect, Option } from "effect"
import { resolveBinary } from "../../src/layers/platform/FfmpegLive.js"

/**
 * The ffmpeg the app itself would run (FFMPEG_PATH, then PATH, then the npm-bundled build), for tests
 * that make their media with lavfi: a fresh machine has no ffmpeg on the PATH.
 */
export const ffmpegBinary = (): Promise<string> =>
  Effect.runPromise(resolveBinary("ffmpeg", "FFMPEG_PATH", Option.fromNullable(process.env["FFMPEG_PATH"]))).then((found) => found.path)
