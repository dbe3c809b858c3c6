import * as path from "node:path"
import { Context, Data, Duration, type Effect, type Scope } from "effect"
import type { FfmpegCommand } from "fluent-ffmpeg"

export type CodecType = "video" | "audio" | "subtitle" | "data" | "attachment" | (string & {})

export interface ProbeStream {
  readonly index: number
  readonly codecType: CodecType
  readonly codecName?: string
  readonly width?: number
  readonly height?: number
  /** Average frames per second (e.g. 29.97), when the stream has one. */
  readonly frameRate?: number
  readonly durationSeconds?: number
}

export interface ProbeResult {
  readonly durationSeconds: number
  /** ffprobe's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  readonly formatName: string
  readonly sizeBytes?: number
  readonly streams: ReadonlyArray<ProbeStream>
}

export interface ProbeOptions {
  /** Default 30 seconds; the ffprobe process is killed when it runs out. */
  readonly timeout?: Duration.DurationInput
  /**
   * The demuxer to read the file with (`-f`, e.g. "mov", "matroska"), when the caller already knows the
   * container from its magic bytes: the file is then never guessed into a playlist or concat list.
   */
  readonly format?: string
}

/**
 * Protocols an ffmpeg or ffprobe input may open: local files and pipes only. A crafted input (an HLS
 * playlist, a concat list, a reference in a container) can then neither reach the network nor another
 * protocol; `FfmpegLive` puts it before every input of every run.
 */
export const INPUT_PROTOCOLS = "file,pipe"

export interface FfmpegProgress {
  /** 0-100, against `RunOptions.durationSeconds` or else the first input's duration; absent when neither is known. */
  readonly percent?: number
  /** Output position as ffmpeg prints it, e.g. "00:00:01.96". */
  readonly timemark?: string
  readonly frames?: number
}

export interface RunOptions {
  /** Default: the configured FFMPEG_TIMEOUT. The process is killed when it runs out. */
  readonly timeout?: Duration.DurationInput
  /** Runs on its own fiber, never blocking ffmpeg; while one call is running only the latest update is kept. */
  readonly onProgress?: (progress: FfmpegProgress) => Effect.Effect<void>
  /** Called once ffmpeg has been spawned; `run` does not complete before this effect has. */
  readonly onStart?: (pid: number) => Effect.Effect<void>
  /** The expected output duration, for `percent`; use it when the output is trimmed or the input is lavfi. */
  readonly durationSeconds?: number
}

/** Where a binary was found: FFMPEG_PATH/FFPROBE_PATH, the PATH, or the build an npm package bundles. */
export type BinarySource = "configured" | "path" | "bundled"

/**
 * Every filter and encoder the media apps rely on (Video Mixer and Looping Flow: scale/pad/concat/trim and
 * speed changes, crossfade and boomerang loops, the audio mix), the one list the startup check reads. A
 * job names what it needs with `Ffmpeg.require` before it renders.
 */
export const REQUIRED_CAPABILITIES = {
  encoders: ["libx264", "aac"],
  filters: [
    "scale", "pad", "setsar", "fps", "format", "split", "setpts", "asetpts", "atempo", "trim", "atrim", "concat",
    "blend", "reverse", "areverse", "asplit", "aresample", "aformat", "apad", "afade", "amix", "volume", "anullsrc"
  ]
} as const

export type RequiredCapability =
  | (typeof REQUIRED_CAPABILITIES.encoders)[number]
  | (typeof REQUIRED_CAPABILITIES.filters)[number]

export interface FfmpegInfo {
  /** Undefined only with ROLE=api when no ffmpeg was found: that role needs ffprobe alone, and `run` refuses. */
  readonly ffmpegPath: string | undefined
  readonly ffprobePath: string
  readonly ffmpegVersion: string | undefined
  readonly ffprobeVersion: string
  readonly ffmpegSource: BinarySource | undefined
  readonly ffprobeSource: BinarySource
  /** The REQUIRED_CAPABILITIES this ffmpeg lacks (empty when there is no ffmpeg: see `ffmpegPath`). */
  readonly missing: ReadonlyArray<RequiredCapability>
}

export interface FfmpegShape {
  readonly info: FfmpegInfo
  /** Fails with reason "probe" for anything that is not readable audio/video with a known duration. */
  readonly probe: (file: string, options?: ProbeOptions) => Effect.Effect<ProbeResult, FfmpegError | FfmpegTimeout>
  /**
   * Runs one fluent-ffmpeg command. Pass file paths through `fileArg`. Interruption and timeouts kill the
   * process (SIGTERM, then SIGKILL after 1 s) and complete only once it has exited. Fails with
   * FfmpegUnsupported when this process has no ffmpeg (ROLE=api).
   */
  readonly run: (
    configure: (command: FfmpegCommand) => FfmpegCommand,
    options?: RunOptions
  ) => Effect.Effect<void, FfmpegError | FfmpegTimeout | FfmpegUnsupported>
  /**
   * Succeeds when this ffmpeg has every named filter or encoder (any name `ffmpeg -filters` / `-encoders`
   * lists, not only the required ones); otherwise fails with FfmpegUnsupported naming the missing ones, a
   * permanent failure for a job. Call it before rendering, so a job is refused instead of failing mid-render.
   */
  readonly require: (capabilities: ReadonlyArray<string>) => Effect.Effect<void, FfmpegUnsupported>
  /** A fresh directory under the OS temp dir, removed with everything in it when the scope closes. */
  readonly tempDir: Effect.Effect<string, FfmpegError, Scope.Scope>
}

export class Ffmpeg extends Context.Tag("app/Ffmpeg")<Ffmpeg, FfmpegShape>() {}

export type FfmpegErrorReason = "spawn" | "exit" | "probe" | "not-found" | "io"

/**
 * - spawn: the process could not be started (or the command was invalid before starting it)
 * - exit: ffmpeg ran and exited non-zero or was killed by a signal we did not send
 * - probe: the file is not readable media with a known duration
 * - not-found: a binary is missing or does not run (layer construction)
 * - io: temporary directory handling
 */
export class FfmpegError extends Data.TaggedError("FfmpegError")<{
  readonly reason: FfmpegErrorReason
  readonly detail: string
  readonly exitCode?: number | undefined
  readonly signal?: string | undefined
  readonly stderrTail?: string | undefined
  readonly cause?: unknown
}> {
  override get message() {
    const status = [
      this.exitCode === undefined ? undefined : `exit code ${this.exitCode}`,
      this.signal === undefined ? undefined : `signal ${this.signal}`
    ].filter((s) => s !== undefined)
    const lastLine = this.stderrTail?.trim().split("\n").at(-1)?.trim()
    return `ffmpeg ${this.reason}: ${this.detail}` +
      (status.length > 0 ? ` (${status.join(", ")})` : "") +
      (lastLine ? `: ${lastLine}` : "")
  }
}

/**
 * This process's ffmpeg cannot do what was asked: a filter or encoder is missing from its build, or there is
 * no ffmpeg at all (ROLE=api). Retrying cannot help: a job fails permanently (services/jobs/classify.ts).
 */
export class FfmpegUnsupported extends Data.TaggedError("FfmpegUnsupported")<{
  readonly missing: ReadonlyArray<string>
  /** Undefined when there is no ffmpeg in this process. */
  readonly ffmpegVersion: string | undefined
}> {
  override get message() {
    return this.ffmpegVersion === undefined
      ? "ffmpeg is not available in this process (ROLE=api needs only ffprobe); run media jobs in a worker"
      : `ffmpeg ${this.ffmpegVersion} lacks ${this.missing.join(", ")}; install a build that has ${
        this.missing.length === 1 ? "it" : "them"
      } (or point FFMPEG_PATH at one)`
  }
}

export class FfmpegTimeout extends Data.TaggedError("FfmpegTimeout")<{
  readonly operation: "probe" | "run" | "version"
  readonly timeout: Duration.Duration
}> {
  override get message() {
    return `ffmpeg ${this.operation} did not finish within ${Duration.format(this.timeout)}; the process was killed`
  }
}

/**
 * A path as an ffmpeg/ffprobe argument that is always read as a local file: never as an option (a name
 * starting with "-") nor as another protocol ("concat:", "http:", ...).
 */
export const fileArg = (file: string): string => `file:${path.resolve(file)}`
