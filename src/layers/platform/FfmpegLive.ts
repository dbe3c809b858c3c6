import { type ChildProcess, spawn } from "node:child_process"
import { constants as fsConstants } from "node:fs"
import { createRequire } from "node:module"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Option, ParseResult, Runtime, Schema } from "effect"
import FluentFfmpeg, { type FfmpegCommand } from "fluent-ffmpeg"
import { AppConfig } from "../../services/platform/AppConfig.js"
import {
  type BinarySource,
  Ffmpeg,
  FfmpegError,
  type FfmpegInfo,
  type FfmpegProgress,
  type FfmpegShape,
  FfmpegTimeout,
  FfmpegUnsupported,
  fileArg,
  INPUT_PROTOCOLS,
  type ProbeOptions,
  type ProbeResult,
  type ProbeStream,
  REQUIRED_CAPABILITIES,
  type RequiredCapability,
  type RunOptions
} from "../../services/platform/Ffmpeg.js"

const KILL_GRACE = Duration.seconds(1)
const STDERR_TAIL_CHARS = 4096
const PROBE_TIMEOUT = Duration.seconds(30)
const PROBE_STDOUT_LIMIT = 8 * 1024 * 1024
const VERSION_TIMEOUT = Duration.seconds(5)
/** ffmpeg's AVPROBE_SCORE_RETRY: at or below it ffmpeg itself warns "misdetection possible". */
const MIN_PROBE_SCORE = 25

// ---------------------------------------------------------------------------------------------------------------
// child processes

/** Keeps the last `limit` characters written to it. */
class TextTail {
  private text = ""
  constructor(private readonly limit: number) {}
  push(chunk: string): void {
    this.text += chunk
    if (this.text.length > 2 * this.limit) this.text = this.text.slice(-this.limit)
  }
  get value(): string {
    return this.text.slice(-this.limit)
  }
}

const hasExited = (child: ChildProcess): boolean =>
  child.pid === undefined || child.exitCode !== null || child.signalCode !== null

/**
 * Every child is spawned detached, so it leads its own process group, and signals go to the group
 * (`kill(-pid)`): whatever ffmpeg started dies with it.
 */
const signalGroup = (pid: number | undefined, signal: NodeJS.Signals): void => {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: nothing is left in the group
  }
}

const sendSignal = (child: ChildProcess | undefined, signal: NodeJS.Signals): void => {
  if (child !== undefined && !hasExited(child)) signalGroup(child.pid, signal)
}

/**
 * The process groups of one FfmpegLive's children that are still running, so that they are killed
 * even when the process ends without interrupting their fibers (the shutdown cap's forced exit).
 */
class ProcessGroups {
  private readonly live = new Set<number>()
  /** `setpriv`, when this Linux has one that takes --pdeathsig. */
  constructor(private readonly launcher: string | undefined) {}
  /**
   * The command that starts `file args`: under `setpriv --pdeathsig KILL` when there is one (it execs, so
   * the pid is ffmpeg's), so that the kernel kills the child if this process dies by SIGKILL, when no
   * code of ours runs.
   */
  command(file: string, args: ReadonlyArray<string>): readonly [string, ReadonlyArray<string>] {
    return this.launcher === undefined ? [file, args] : [this.launcher, ["--pdeathsig", "KILL", "--", file, ...args]]
  }
  add(pid: number | undefined): void {
    if (pid !== undefined) this.live.add(pid)
  }
  delete(pid: number | undefined): void {
    if (pid !== undefined) this.live.delete(pid)
  }
  /** Synchronous: it also runs in the process' "exit" event. */
  readonly killAll = (): void => {
    for (const pid of this.live) signalGroup(pid, "SIGKILL")
    this.live.clear()
  }
}

/**
 * SIGTERM, then SIGKILL if the child is still alive after the grace period. Completes only once `exited` is
 * done, so an interrupted or timed-out operation never returns while its process is still running.
 * `child` is read lazily: an interruption can arrive before fluent-ffmpeg has spawned the process.
 */
const terminate = (child: () => ChildProcess | undefined, exited: Deferred.Deferred<void>): Effect.Effect<void> =>
  Effect.suspend(() => {
    sendSignal(child(), "SIGTERM")
    // This runs while interrupting, uninterruptibly: a plain timeout here would only fire once the
    // process had exited by itself, and SIGKILL would never be sent to one that ignores SIGTERM.
    return Effect.interruptible(Deferred.await(exited)).pipe(
      Effect.timeoutOption(KILL_GRACE),
      Effect.flatMap(Option.match({
        onSome: () => Effect.void,
        onNone: () =>
          Effect.logWarning("ffmpeg did not exit after SIGTERM; sending SIGKILL", { pid: child()?.pid }).pipe(
            Effect.zipRight(Effect.sync(() => sendSignal(child(), "SIGKILL"))),
            Effect.zipRight(Deferred.await(exited))
          )
      })),
      // ffmpeg is gone; anything it started that outlived it is not
      Effect.zipRight(Effect.sync(() => signalGroup(child()?.pid, "SIGKILL")))
    )
  })

interface Collected {
  readonly exitCode: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stdoutOverflow: boolean
  readonly stderrTail: string
}

/** Runs `file args` (argument array, no shell) and collects its output; interruption kills the process group. */
const collect = (file: string, args: ReadonlyArray<string>, stdoutLimit: number, groups?: ProcessGroups) =>
  Effect.flatMap(Deferred.make<void>(), (exited) =>
    Effect.async<Collected, FfmpegError>((resume) => {
      let child: ChildProcess
      try {
        const [command, argv] = groups?.command(file, args) ?? [file, args]
        child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"], windowsHide: true, detached: true })
        groups?.add(child.pid)
      } catch (cause) {
        // e.g. an argument containing a NUL byte
        Deferred.unsafeDone(exited, Exit.void)
        resume(Effect.fail(new FfmpegError({ reason: "spawn", detail: `cannot start ${file}`, cause })))
        return
      }
      const stdout: Array<Buffer> = []
      let stdoutBytes = 0
      let stdoutOverflow = false
      const stderr = new TextTail(STDERR_TAIL_CHARS)
      let spawnError: Error | undefined
      child.stdout?.on("data", (chunk: Buffer) => {
        if (stdoutOverflow) return
        stdoutBytes += chunk.length
        if (stdoutBytes <= stdoutLimit) stdout.push(chunk)
        else {
          stdoutOverflow = true
          signalGroup(child.pid, "SIGKILL")
        }
      })
      child.stderr?.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk))
      child.on("error", (error) => {
        spawnError ??= error
      })
      // "close" follows both a normal exit (after stdio has drained) and a failed spawn
      child.once("close", (exitCode: number | null, signal: NodeJS.Signals | null) => {
        groups?.delete(child.pid)
        Deferred.unsafeDone(exited, Exit.void)
        if (child.pid === undefined) {
          resume(Effect.fail(new FfmpegError({ reason: "spawn", detail: `cannot start ${file}`, cause: spawnError })))
        } else {
          resume(Effect.succeed({
            exitCode,
            signal,
            stdout: Buffer.concat(stdout).toString("utf8"),
            stdoutOverflow,
            stderrTail: stderr.value
          }))
        }
      })
      return terminate(() => child, exited)
    })
  )

// ---------------------------------------------------------------------------------------------------------------
// probe

/** ffprobe prints numbers as strings ("2.000000"); "nan"/"inf" are rejected rather than passed on. */
const FiniteFromString = Schema.NumberFromString.pipe(Schema.finite())

const FfprobeStream = Schema.Struct({
  index: Schema.Number,
  codec_type: Schema.optionalWith(Schema.String, { default: () => "unknown" }),
  codec_name: Schema.optional(Schema.String),
  width: Schema.optional(Schema.Number),
  height: Schema.optional(Schema.Number),
  avg_frame_rate: Schema.optional(Schema.String),
  r_frame_rate: Schema.optional(Schema.String),
  // a stream duration is informative only: an odd value drops it instead of failing the probe
  duration: Schema.optional(Schema.String)
})

const FormatFields = {
  format_name: Schema.String,
  duration: FiniteFromString.pipe(Schema.positive({ message: () => "the duration must be a positive number" })),
  size: Schema.optionalWith(FiniteFromString, { exact: true })
}

const Streams = Schema.Array(FfprobeStream).pipe(Schema.filter(
  (streams) => streams.some((s) => s.codec_type === "video" || s.codec_type === "audio"),
  { message: () => "no audio or video stream" }
))

const FfprobeOutput = Schema.Struct({
  format: Schema.Struct({
    ...FormatFields,
    probe_score: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(MIN_PROBE_SCORE, {
      message: () => "the format was only guessed from the name or a few bytes (probe score too low)"
    })), { exact: true })
  }),
  streams: Streams
})

/** With `-f` the caller chose the demuxer (from the magic bytes): ffprobe reports a score of 0, meaningless then. */
const FfprobeOutputForced = Schema.Struct({ format: Schema.Struct(FormatFields), streams: Streams })

const decodeFfprobeOutput = (json: string, forced: boolean) =>
  Schema.decodeUnknown(Schema.parseJson(forced ? FfprobeOutputForced : FfprobeOutput))(json).pipe(
    // one "path: problem" per issue instead of the schema's type tree
    Effect.mapError((error) => ({
      error,
      summary: ParseResult.ArrayFormatter.formatErrorSync(error)
        .map((issue) => issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`)
        .join("; ")
    }))
  )

const PROBE_ARGS = [
  "-v",
  "error",
  // the file may be a playlist or reference other inputs: never let it reach the network or other protocols
  "-protocol_whitelist",
  INPUT_PROTOCOLS,
  "-print_format",
  "json",
  "-show_format",
  "-show_streams"
] as const

/** "30000/1001" -> 29.97; "0/0" (no frame rate) -> undefined */
const parseRate = (rate: string | undefined): number | undefined => {
  const match = rate === undefined ? null : /^(\d+)\/(\d+)$/.exec(rate)
  if (match === null) return undefined
  const value = Number(match[1]) / Number(match[2])
  return Number.isFinite(value) && value > 0 ? value : undefined
}

const finiteOrUndefined = (text: string | undefined): number | undefined => {
  const value = text === undefined ? Number.NaN : Number(text)
  return Number.isFinite(value) ? value : undefined
}

const toProbeResult = (raw: typeof FfprobeOutputForced.Type): ProbeResult => ({
  durationSeconds: raw.format.duration,
  formatName: raw.format.format_name,
  ...(raw.format.size === undefined ? {} : { sizeBytes: raw.format.size }),
  streams: raw.streams.map((s): ProbeStream => {
    const frameRate = s.codec_type === "video" ? parseRate(s.avg_frame_rate) ?? parseRate(s.r_frame_rate) : undefined
    const durationSeconds = finiteOrUndefined(s.duration)
    return {
      index: s.index,
      codecType: s.codec_type,
      ...(s.codec_name === undefined ? {} : { codecName: s.codec_name }),
      ...(s.width === undefined ? {} : { width: s.width }),
      ...(s.height === undefined ? {} : { height: s.height }),
      ...(frameRate === undefined ? {} : { frameRate }),
      ...(durationSeconds === undefined ? {} : { durationSeconds })
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------
// run

const durationLine = /^Duration: (?:N\/A|(\d+):(\d{2}):(\d{2}(?:\.\d+)?))/
const timemarkPattern = /^(-?\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/

const timemarkSeconds = (timemark: string): number | undefined => {
  const m = timemarkPattern.exec(timemark)
  if (m === null) return undefined
  const sign = m[1]?.startsWith("-") ? -1 : 1
  return sign * (Math.abs(Number(m[1])) * 3600 + Number(m[2]) * 60 + Number(m[3]))
}

/** Reads ffmpeg's stats lines ("frame=   50 fps=0.0 ... time=00:00:01.96 ..."), one stderr line at a time. */
class ProgressParser {
  private inputSeconds: number | undefined
  private sawInputDuration = false
  constructor(private readonly expectedSeconds: number | undefined) {}

  line(line: string): FfmpegProgress | undefined {
    const text = line.trim()
    const d = this.sawInputDuration ? null : durationLine.exec(text)
    if (d !== null) {
      // only input #0's, even when it is "N/A" (lavfi): a later input's duration would give a wrong percent
      this.sawInputDuration = true
      if (d[1] !== undefined) this.inputSeconds = Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3])
      return undefined
    }
    if (!/^(frame|size)=/.test(text)) return undefined
    const fields = new Map<string, string>()
    for (const [, key, value] of text.matchAll(/(\w+)=\s*(\S+)/g)) {
      if (key !== undefined && value !== undefined) fields.set(key, value)
    }
    const frames = Number.parseInt(fields.get("frame") ?? "", 10)
    const time = fields.get("time")
    const elapsed = time === undefined ? undefined : timemarkSeconds(time)
    const total = this.expectedSeconds ?? this.inputSeconds
    const percent = elapsed !== undefined && total !== undefined && total > 0
      ? Math.min(100, Math.max(0, (elapsed / total) * 100))
      : undefined
    return {
      ...(Number.isFinite(frames) ? { frames } : {}),
      ...(time === undefined || elapsed === undefined ? {} : { timemark: time }),
      ...(percent === undefined ? {} : { percent })
    }
  }
}

/**
 * Runs the caller's callbacks on fibers of the caller's runtime, so a slow callback never stalls the
 * reading of ffmpeg's stderr. One progress call at a time; while it runs only the latest update is kept.
 */
const makeCallbacks = (runtime: Runtime.Runtime<never>, options: RunOptions | undefined) => {
  const fork = Runtime.runFork(runtime)
  const guard = (label: string, effect: Effect.Effect<void>) =>
    effect.pipe(Effect.catchAllCause((cause) => Effect.logWarning(`ffmpeg ${label} callback failed`, cause)))
  let closed = false
  let inFlight: Fiber.RuntimeFiber<void> | undefined
  let pending: FfmpegProgress | undefined
  let started: Fiber.RuntimeFiber<void> | undefined

  const progress = (update: FfmpegProgress): void => {
    const onProgress = options?.onProgress
    if (onProgress === undefined || closed) return
    if (inFlight !== undefined) {
      pending = update
      return
    }
    const fiber = fork(guard("onProgress", Effect.suspend(() => onProgress(update))))
    inFlight = fiber
    fiber.addObserver(() => {
      if (inFlight === fiber) inFlight = undefined
      const next = pending
      pending = undefined
      if (next !== undefined) progress(next)
    })
  }

  const start = (pid: number): void => {
    const onStart = options?.onStart
    if (onStart !== undefined && started === undefined) started = fork(guard("onStart", Effect.suspend(() => onStart(pid))))
  }

  /** Drops progress still to come and interrupts the one running; lets onStart finish (callers rely on the pid). */
  const close = Effect.suspend(() => {
    closed = true
    pending = undefined
    return Effect.zipRight(
      inFlight === undefined ? Effect.void : Fiber.interrupt(inFlight),
      started === undefined ? Effect.void : Fiber.await(started)
    )
  })

  return { progress, start, close }
}

/** fluent-ffmpeg keeps the spawned process on this undocumented field for the duration of the run. */
const childOf = (command: FfmpegCommand): ChildProcess | undefined =>
  (command as unknown as { readonly ffmpegProc?: ChildProcess }).ffmpegProc

type PathLookup = (callback: (error: Error | null, path: string) => void) => void
type SpawnFfmpeg = (args: Array<string>, options: object | ((...a: Array<unknown>) => void), ...callbacks: Array<unknown>) => void

/**
 * fluent-ffmpeg 2.1's setFfmpegPath/setFfprobePath write one module-wide cache, so two services with
 * different binaries would use whichever was set last. Shadowing the lookups on the instance pins this
 * command (including fluent-ffmpeg's own capability checks) to our binaries.
 */
const pinBinaries = (command: FfmpegCommand, ffmpegPath: string, ffprobePath: string, groups: ProcessGroups): FfmpegCommand => {
  const lookups = command as unknown as { _getFfmpegPath: PathLookup; _getFfprobePath: PathLookup; _spawnFfmpeg: SpawnFfmpeg }
  const [launcher, launcherArgs] = groups.command(ffmpegPath, [])
  lookups._getFfmpegPath = (callback) => callback(null, launcher)
  lookups._getFfprobePath = (callback) => callback(null, ffprobePath)
  // fluent-ffmpeg hands these options to child_process.spawn: each ffmpeg leads its own process group.
  const spawnFfmpeg = lookups._spawnFfmpeg
  lookups._spawnFfmpeg = function(this: FfmpegCommand, args, options, ...callbacks) {
    return spawnFfmpeg.call(
      this,
      [...launcherArgs, ...restrictInputs(args)],
      typeof options === "function" ? options : { ...options, detached: true },
      ...callbacks
    )
  }
  return command.setFfmpegPath(ffmpegPath).setFfprobePath(ffprobePath)
}

/**
 * Puts `-protocol_whitelist file,pipe` right before every `-i`, after any input options the command set:
 * ffmpeg applies the last occurrence, so no command can widen it (lavfi inputs open no protocol).
 */
export const restrictInputs = (args: ReadonlyArray<string>): Array<string> =>
  args.flatMap((arg, i) => (arg === "-i" && args[i - 1] !== "-protocol_whitelist" ? ["-protocol_whitelist", INPUT_PROTOCOLS, arg] : [arg]))

const invalidCommand = (cause: unknown) =>
  new FfmpegError({
    reason: "spawn",
    detail: `invalid ffmpeg command: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

// ---------------------------------------------------------------------------------------------------------------
// service

/** What this ffmpeg can do: every filter and encoder it lists (empty sets when there is no ffmpeg). */
interface Capabilities {
  readonly filters: ReadonlySet<string>
  readonly encoders: ReadonlySet<string>
}

const make = (info: FfmpegInfo, capabilities: Capabilities, defaultTimeout: Duration.Duration, groups: ProcessGroups): FfmpegShape => {
  const requireCapabilities = Effect.fn("Ffmpeg.require")(function*(names: ReadonlyArray<string>) {
    if (info.ffmpegPath === undefined) {
      return yield* new FfmpegUnsupported({ missing: names, ffmpegVersion: undefined })
    }
    const missing = names.filter((name) => !capabilities.filters.has(name) && !capabilities.encoders.has(name))
    if (missing.length > 0) return yield* new FfmpegUnsupported({ missing, ffmpegVersion: info.ffmpegVersion })
  })

  const probe = Effect.fn("Ffmpeg.probe")(function*(file: string, options?: ProbeOptions) {
    yield* Effect.annotateCurrentSpan("file", file)
    const timeout = Duration.decode(options?.timeout ?? PROBE_TIMEOUT)
    const out = yield* collect(info.ffprobePath, [...PROBE_ARGS, ...(options?.format === undefined ? [] : ["-f", options.format]), fileArg(file)], PROBE_STDOUT_LIMIT, groups).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => new FfmpegTimeout({ operation: "probe", timeout }) })
    )
    if (out.stdoutOverflow) {
      return yield* new FfmpegError({ reason: "probe", detail: `${file}: ffprobe printed more than ${PROBE_STDOUT_LIMIT} bytes` })
    }
    if (out.exitCode !== 0) {
      return yield* new FfmpegError({
        reason: "probe",
        detail: `${file} is not readable media`,
        exitCode: out.exitCode ?? undefined,
        signal: out.signal ?? undefined,
        stderrTail: out.stderrTail
      })
    }
    const raw = yield* decodeFfprobeOutput(out.stdout, options?.format !== undefined).pipe(
      Effect.mapError(({ error, summary }) =>
        new FfmpegError({ reason: "probe", detail: `${file}: ${summary}`, stderrTail: out.stderrTail, cause: error })
      )
    )
    return toProbeResult(raw)
  })

  const run = Effect.fn("Ffmpeg.run")(function*(
    configure: (command: FfmpegCommand) => FfmpegCommand,
    options?: RunOptions
  ) {
    const ffmpegPath = info.ffmpegPath
    if (ffmpegPath === undefined) return yield* new FfmpegUnsupported({ missing: ["ffmpeg"], ffmpegVersion: undefined })
    const timeout = Duration.decode(options?.timeout ?? defaultTimeout)
    const exited = yield* Deferred.make<void>()
    const callbacks = makeCallbacks(yield* Effect.runtime<never>(), options)

    const running = Effect.async<void, FfmpegError>((resume) => {
      let child: ChildProcess | undefined
      let cancelled = false
      const stderr = new TextTail(STDERR_TAIL_CHARS)
      const progress = new ProgressParser(options?.durationSeconds)

      // fluent-ffmpeg emits "end"/"error" after the process has exited, except for its stream errors:
      // then the process is killed first so the run never completes while it is alive.
      const settle = (result: Effect.Effect<void, FfmpegError>) => {
        const finish = () => {
          groups.delete(child?.pid)
          Deferred.unsafeDone(exited, Exit.void)
          resume(result)
        }
        const current = child
        if (current === undefined || hasExited(current)) finish()
        else {
          current.once("exit", finish)
          signalGroup(current.pid, "SIGKILL")
        }
      }

      let command: FfmpegCommand
      try {
        command = configure(pinBinaries(FluentFfmpeg(), ffmpegPath, info.ffprobePath, groups))
      } catch (cause) {
        settle(Effect.fail(invalidCommand(cause)))
        return
      }

      command.on("start", () => {
        child = childOf(command)
        const pid = child?.pid
        if (pid === undefined) return // the spawn failed; "error" follows
        groups.add(pid)
        if (cancelled) signalGroup(pid, "SIGTERM")
        callbacks.start(pid)
      })
      command.on("stderr", (line) => {
        stderr.push(`${line}\n`)
        const update = progress.line(line)
        if (update !== undefined) callbacks.progress(update)
      })
      command.on("end", () => settle(Effect.void))
      command.on("error", (error) => {
        const current = child
        // classified by what happened to the process, never by fluent-ffmpeg's message text
        settle(Effect.fail(
          current === undefined || current.pid === undefined
            ? new FfmpegError({ reason: "spawn", detail: `cannot start ffmpeg: ${error.message}`, cause: error })
            : new FfmpegError({
              reason: "exit",
              detail: "ffmpeg failed",
              exitCode: current.exitCode ?? undefined,
              signal: current.signalCode ?? undefined,
              stderrTail: stderr.value,
              cause: error
            })
        ))
      })
      try {
        command.run()
      } catch (cause) {
        // fluent-ffmpeg throws synchronously when no output was configured
        settle(Effect.fail(invalidCommand(cause)))
        return
      }
      return Effect.suspend(() => {
        cancelled = true
        return terminate(() => child, exited)
      })
    })

    return yield* running.pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => new FfmpegTimeout({ operation: "run", timeout }) }),
      Effect.ensuring(callbacks.close)
    )
  })

  const tempDir = Effect.acquireRelease(
    Effect.tryPromise({
      try: () => fs.mkdtemp(path.join(os.tmpdir(), "lumiku-ffmpeg-")),
      catch: (cause) => new FfmpegError({ reason: "io", detail: `cannot create a directory in ${os.tmpdir()}`, cause })
    }),
    (dir) =>
      Effect.tryPromise(() => fs.rm(dir, { recursive: true, force: true })).pipe(
        Effect.catchAll((error) => Effect.logWarning("could not remove ffmpeg temp dir", { dir, error: String(error) }))
      )
  ).pipe(Effect.withSpan("Ffmpeg.tempDir"))

  return { info, probe, run, require: requireCapabilities, tempDir }
}

// ---------------------------------------------------------------------------------------------------------------
// layer

const isExecutableFile = (file: string): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    try {
      await fs.access(file, fsConstants.X_OK)
      return (await fs.stat(file)).isFile()
    } catch {
      return false
    }
  })

// A small PATH walk rather than a `which` package: it is a dozen lines, and we want exactly "an executable
// regular file" with no shell, no PATHEXT and no current-directory fallback for empty PATH entries.
const searchPath = (name: string): Effect.Effect<Option.Option<string>> =>
  Effect.gen(function*() {
    const dirs = (process.env["PATH"] ?? "").split(path.delimiter).filter((dir) => path.isAbsolute(dir))
    for (const dir of dirs) {
      const candidate = path.join(dir, name)
      if (yield* isExecutableFile(candidate)) return Option.some(candidate)
    }
    return Option.none()
  })

const notFound = (detail: string, extra?: Partial<Pick<FfmpegError, "exitCode" | "signal" | "stderrTail">>) =>
  new FfmpegError({ reason: "not-found", detail, ...extra })

/**
 * `setpriv` (util-linux, on every Debian) if it runs a child with --pdeathsig. Without it a worker killed
 * by SIGKILL leaves its ffmpeg running until the render ends (logged as a warning).
 */
const findDeathSignalLauncher = (probeBinary: string): Effect.Effect<Option.Option<string>> =>
  process.platform !== "linux" ? Effect.succeedNone : searchPath("setpriv").pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeedNone,
      onSome: (setpriv) =>
        collect(setpriv, ["--pdeathsig", "KILL", "--", probeBinary, "-version"], 1024 * 1024).pipe(
          Effect.timeout(VERSION_TIMEOUT),
          Effect.map((out) => (out.exitCode === 0 ? Option.some(setpriv) : Option.none())),
          Effect.orElseSucceed(() => Option.none<string>())
        )
    })),
    Effect.tap(Option.match({
      onSome: () => Effect.void,
      onNone: () => Effect.logWarning("no setpriv with --pdeathsig on this Linux: a worker killed by SIGKILL leaves its ffmpeg running until the render ends")
    }))
  )

/** npm packages that carry the binary in the registry package itself (installed by `npm ci` as optional dependencies). */
const BUNDLED_PACKAGES = { ffmpeg: "@ffmpeg-installer/ffmpeg", ffprobe: "@ffprobe-installer/ffprobe" } as const

const requireFromHere = createRequire(import.meta.url)

/** The bundled binary's path, or none when its package is not installed or has no build for this platform. */
const bundledBinary = (name: BinaryName): Effect.Effect<Option.Option<string>> =>
  Effect.suspend(() => {
    try {
      // The package's index throws (a string, for ffmpeg-installer) on an unsupported platform or a missing binary.
      const { path: file } = requireFromHere(BUNDLED_PACKAGES[name]) as { readonly path: string }
      return isExecutableFile(file).pipe(Effect.map((ok) => (ok ? Option.some(file) : Option.none())))
    } catch {
      return Effect.succeed(Option.none())
    }
  })

type BinaryName = keyof typeof BUNDLED_PACKAGES

export interface ResolvedBinary {
  readonly path: string
  readonly source: BinarySource
}

/** FFMPEG_PATH / FFPROBE_PATH, then PATH, then (unless FFMPEG_BUNDLED=false) the binary an npm package bundled. */
export const resolveBinary = (name: BinaryName, variable: string, configured: Option.Option<string>, allowBundled = true) =>
  Option.match(configured, {
    onNone: () =>
      searchPath(name).pipe(
        Effect.map(Option.map((file): ResolvedBinary => ({ path: file, source: "path" }))),
        Effect.flatMap(Option.match({
          onSome: Effect.succeed,
          onNone: () =>
            (allowBundled ? bundledBinary(name) : Effect.succeed(Option.none<string>())).pipe(Effect.flatMap(Option.match({
              onSome: (file) => Effect.succeed<ResolvedBinary>({ path: file, source: "bundled" }),
              onNone: () =>
                Effect.fail(notFound(
                  allowBundled
                    ? `${name} was not found on PATH nor in ${BUNDLED_PACKAGES[name]}; install it or set ${variable}`
                    : `${name} was not found on PATH (FFMPEG_BUNDLED=false); install it or set ${variable}`
                ))
            })))
        }))
      ),
    onSome: (value) =>
      (value.includes(path.sep)
        ? isExecutableFile(path.resolve(value)).pipe(Effect.flatMap((ok) =>
          ok
            ? Effect.succeed(path.resolve(value))
            : Effect.fail(notFound(`${variable}=${value} is not an executable file`))
        ))
        : searchPath(value).pipe(Effect.flatMap(Option.match({
          onNone: () => Effect.fail(notFound(`${variable}=${value} was not found on PATH`)),
          onSome: Effect.succeed
        })))).pipe(Effect.map((file): ResolvedBinary => ({ path: file, source: "configured" })))
  })

/** "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) ..." -> "5.1.9-0+deb12u1" */
const readVersion = (name: string, file: string, variable: string) =>
  collect(file, ["-version"], 1024 * 1024).pipe(
    Effect.timeoutFail({
      duration: VERSION_TIMEOUT,
      onTimeout: () => new FfmpegTimeout({ operation: "version", timeout: VERSION_TIMEOUT })
    }),
    Effect.mapError((error) => notFound(`${name} (${file}) does not run: ${error.message}; check ${variable}`)),
    Effect.flatMap((out) => {
      const version = /^\S+ version (\S+)/.exec(out.stdout.split("\n", 1)[0] ?? "")?.[1]
      return out.exitCode === 0 && version !== undefined
        ? Effect.succeed(version)
        : Effect.fail(notFound(`${name} (${file}) is not a working ${name}: -version failed; check ${variable}`, {
          exitCode: out.exitCode ?? undefined,
          signal: out.signal ?? undefined,
          stderrTail: out.stderrTail
        }))
    })
  )

/** Names from `ffmpeg -filters` (" T.. name  A->A  description") or `-encoders` (" V..... name  description"). */
export const parseCapabilityList = (output: string, kind: "filters" | "encoders"): ReadonlySet<string> => {
  const line = kind === "filters" ? /^ [T.][S.][C.] (\S+)\s+\S*->\S*\s/ : /^ [VASD.][F.][S.][X.][B.][D.] (\S+)\s/
  const names = new Set<string>()
  // -encoders prints a legend before a "------" line; -filters has no such line, and its legend lines do not match
  const lines = output.split("\n")
  const start = kind === "encoders" ? lines.findIndex((l) => l.trim() === "------") + 1 : 0
  for (const text of lines.slice(start)) {
    const name = line.exec(text)?.[1]
    if (name !== undefined && name !== "=") names.add(name)
  }
  return names
}

/** `ffmpeg -hide_banner -<kind>`, through `collect` (argument array, no shell). */
const readCapabilityList = (file: string, kind: "filters" | "encoders") =>
  collect(file, ["-hide_banner", `-${kind}`], 4 * 1024 * 1024).pipe(
    Effect.timeoutFail({
      duration: VERSION_TIMEOUT,
      onTimeout: () => new FfmpegTimeout({ operation: "version", timeout: VERSION_TIMEOUT })
    }),
    Effect.mapError((error) => notFound(`ffmpeg (${file}) could not list its ${kind}: ${error.message}; check FFMPEG_PATH`)),
    Effect.flatMap((out) => {
      const names = parseCapabilityList(out.stdout, kind)
      return out.exitCode === 0 && names.size > 0
        ? Effect.succeed(names)
        : Effect.fail(notFound(`ffmpeg (${file}) could not list its ${kind}; check FFMPEG_PATH`, {
          exitCode: out.exitCode ?? undefined,
          stderrTail: out.stderrTail
        }))
    })
  )

const readCapabilities = (file: string): Effect.Effect<Capabilities, FfmpegError> =>
  Effect.all({ filters: readCapabilityList(file, "filters"), encoders: readCapabilityList(file, "encoders") }, {
    concurrency: 2
  })

const missingFrom = (capabilities: Capabilities): ReadonlyArray<RequiredCapability> => [
  ...REQUIRED_CAPABILITIES.encoders.filter((name) => !capabilities.encoders.has(name)),
  ...REQUIRED_CAPABILITIES.filters.filter((name) => !capabilities.filters.has(name))
]

const NO_CAPABILITIES: Capabilities = { filters: new Set(), encoders: new Set() }

/** ffmpeg resolved, run once and its capabilities read; fails with reason "not-found" when any step fails. */
const loadFfmpeg = (configured: Option.Option<string>, allowBundled: boolean) =>
  Effect.gen(function*() {
    const binary = yield* resolveBinary("ffmpeg", "FFMPEG_PATH", configured, allowBundled)
    // -version first: its failure names the binary and the variable best
    const version = yield* readVersion("ffmpeg", binary.path, "FFMPEG_PATH")
    const capabilities = yield* readCapabilities(binary.path)
    return { binary, version, capabilities }
  })

/**
 * Resolves ffmpeg and ffprobe (FFMPEG_PATH / FFPROBE_PATH, else PATH, else the npm-bundled builds unless
 * FFMPEG_BUNDLED=false), checks that both run and reads which of REQUIRED_CAPABILITIES ffmpeg lacks (logged
 * as a warning; `require` refuses jobs that need one). Construction fails with reason "not-found" otherwise,
 * except that ROLE=api, which only probes uploads, starts without an ffmpeg it cannot find (unless FFMPEG_PATH
 * names one: a configured binary that does not work is an operator error in every role). Each probe/run owns
 * its child process, spawned detached as the leader of its own process group, and kills the group on
 * interruption or timeout; each `tempDir` is removed when its scope closes. The layer owns the registry of
 * groups still running: on release, and in the process' "exit" event (a forced exit at the shutdown cap
 * interrupts nothing), it SIGKILLs every one of them, so no ffmpeg outlives the process.
 */
export const FfmpegLive: Layer.Layer<Ffmpeg, FfmpegError, AppConfig> = Layer.scoped(
  Ffmpeg,
  Effect.gen(function*() {
    const appConfig = yield* AppConfig
    const config = appConfig.ffmpeg
    const ffmpegOptional = appConfig.role === "api" && Option.isNone(config.ffmpegPath)
    const [loaded, ffprobe] = yield* Effect.all([
      loadFfmpeg(config.ffmpegPath, config.bundled).pipe(
        Effect.map(Option.some),
        Effect.catchAll((error) =>
          ffmpegOptional
            ? Effect.logWarning(`no usable ffmpeg; ROLE=api needs only ffprobe, so media rendering is refused in this process: ${error.message}`)
              .pipe(Effect.as(Option.none()))
            : Effect.fail(error)
        )
      ),
      resolveBinary("ffprobe", "FFPROBE_PATH", config.ffprobePath, config.bundled).pipe(
        Effect.flatMap((binary) =>
          Effect.map(readVersion("ffprobe", binary.path, "FFPROBE_PATH"), (version) => ({ binary, version }))
        )
      )
    ], { concurrency: 2 })
    const ffmpeg = Option.getOrUndefined(loaded)
    const capabilities = ffmpeg?.capabilities ?? NO_CAPABILITIES
    const missing = ffmpeg === undefined ? [] : missingFrom(capabilities)
    const info: FfmpegInfo = {
      ffmpegPath: ffmpeg?.binary.path,
      ffmpegVersion: ffmpeg?.version,
      ffmpegSource: ffmpeg?.binary.source,
      ffprobePath: ffprobe.binary.path,
      ffprobeVersion: ffprobe.version,
      ffprobeSource: ffprobe.binary.source,
      missing
    }
    yield* Effect.logInfo("ffmpeg ready", {
      ffmpegPath: info.ffmpegPath ?? "none",
      ffmpegVersion: info.ffmpegVersion ?? "none",
      ffprobePath: info.ffprobePath,
      ffprobeVersion: info.ffprobeVersion
    })
    for (const [name, binary, version] of [["ffmpeg", ffmpeg?.binary, info.ffmpegVersion], ["ffprobe", ffprobe.binary, info.ffprobeVersion]] as const) {
      if (binary?.source === "bundled") {
        yield* Effect.logWarning(`using the ${name} bundled with npm (${binary.path}, version ${version}); it is an old static build, install the system's ${name} or set ${name === "ffmpeg" ? "FFMPEG_PATH" : "FFPROBE_PATH"} for production`)
      }
    }
    if (missing.length > 0) {
      yield* Effect.logWarning(`ffmpeg ${info.ffmpegVersion} (${info.ffmpegPath}) lacks ${missing.join(", ")}; jobs that need ${missing.length === 1 ? "it" : "them"} are refused (see /health)`, { missing })
    }
    const groups = new ProcessGroups(Option.getOrUndefined(yield* findDeathSignalLauncher(ffprobe.binary.path)))
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("exit", groups.killAll)),
      () =>
        Effect.sync(() => {
          process.off("exit", groups.killAll)
          groups.killAll()
        })
    )
    return make(info, capabilities, config.timeout, groups)
  })
)
