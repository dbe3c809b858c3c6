import type { Writable } from "node:stream"
import { Cause, Context, Effect, HashMap, Layer, List, Logger, LogLevel } from "effect"
import pino from "pino"
import pinoPretty from "pino-pretty"
import { AppConfig, type AppConfigShape, type LogLevelName } from "../services/AppConfig.js"
import { makeRedactor, type Redactor } from "./redact.js"

const effectToPino = (level: LogLevel.LogLevel): pino.Level => {
  switch (level._tag) {
    case "All":
    case "Trace":
      return "trace"
    case "Debug":
      return "debug"
    case "Info":
      return "info"
    case "Warning":
      return "warn"
    case "Error":
      return "error"
    default:
      return "fatal"
  }
}

export const minimumLevel = (name: LogLevelName): LogLevel.LogLevel => {
  switch (name) {
    case "trace":
      return LogLevel.Trace
    case "debug":
      return LogLevel.Debug
    case "info":
      return LogLevel.Info
    case "warn":
      return LogLevel.Warning
    case "error":
      return LogLevel.Error
    case "fatal":
      return LogLevel.Fatal
    case "silent":
      return LogLevel.None
  }
}

/**
 * Builds one pino line from an Effect log call: string parts become `msg`, object parts and
 * annotations become fields, spans become `spans.<label>` durations, a cause becomes `err`.
 */
export const makePinoLogger = (log: pino.Logger, redactor: Redactor) =>
  Logger.make<unknown, void>(({ annotations, cause, date, logLevel, message, spans }) => {
    const fields: Record<string, unknown> = {}
    const parts: Array<string> = []
    for (const part of Array.isArray(message) ? message : [message]) {
      if (typeof part === "string") parts.push(part)
      else if (part instanceof Error) fields["err"] = part
      else if (typeof part === "object" && part !== null) Object.assign(fields, part)
      else if (part !== undefined) parts.push(String(part))
    }
    for (const [key, value] of HashMap.toEntries(annotations)) fields[key] = value
    if (List.isCons(spans)) {
      const now = date.getTime()
      const durations: Record<string, number> = {}
      for (const span of spans) durations[span.label] = now - span.startTime
      fields["spans"] = durations
    }
    if (!Cause.isEmpty(cause)) {
      fields["err"] = Cause.pretty(cause, { renderErrorCause: true })
    }
    log[effectToPino(logLevel)](redactor.value(fields) as object, redactor.text(parts.join(" ")))
  })

// Within the 500 ms the shutdown cap keeps free for it (services/Lifecycle.ts): the cap's own timer is
// gone by the time the logger, the outermost layer, is released.
const FLUSH_LIMIT_MS = 250
const SYNC_FLUSH_LIMIT_MS = 200

export interface LoggerOptions {
  /** Where lines go; stdout by default. Tests pass a stream to capture them. */
  readonly destination?: Writable
}

const makePino = (config: AppConfigShape, options: LoggerOptions) => {
  const pinoOptions: pino.LoggerOptions = {
    level: config.log.level,
    base: { service: "lumiku-backend", env: config.env, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime
  }
  if (options.destination !== undefined) {
    return { log: pino(pinoOptions, options.destination), flush: (_limitMs: number) => Promise.resolve() }
  }
  if (config.log.format === "pretty") {
    const pretty = pinoPretty({ sync: true, colorize: process.stdout.isTTY, translateTime: "HH:MM:ss.l", ignore: "pid,hostname,service,env" })
    return { log: pino(pinoOptions, pretty), flush: (_limitMs: number) => Promise.resolve() }
  }
  // Lines are batched (one write per 4 KiB instead of one per line, which showed as the largest
  // single cost under load) and flushed at least every 100 ms, so a quiet process still logs promptly.
  // pino writes fatal lines (and pending lines at process exit) with flushSync, which retries EAGAIN
  // forever when nobody reads stdout, blocking the thread: bounded here, the rest is dropped.
  let syncDeadline: number | undefined
  const destination = pino.destination({
    dest: 1,
    sync: false,
    minLength: 4096,
    retryEAGAIN: () => syncDeadline === undefined || Date.now() < syncDeadline
  })
  const flushSync = destination.flushSync.bind(destination)
  destination.flushSync = () => {
    syncDeadline = Date.now() + SYNC_FLUSH_LIMIT_MS
    try {
      flushSync()
    } catch {
      // stdout is full or gone: what is left is dropped rather than block the process
    } finally {
      syncDeadline = undefined
    }
  }
  const timer = setInterval(() => {
    try {
      destination.flush()
    } catch {
      // stdout is gone (the process is ending); there is nowhere left to write
    }
  }, 100)
  timer.unref()
  return {
    log: pino(pinoOptions, destination),
    // Asynchronous and bounded: the event loop (and the shutdown cap's timer) keeps running while
    // stdout drains. What is still buffered at the limit gets one more bounded try from pino's
    // flushSync in the process' "exit" event, then is dropped.
    flush: (limitMs: number) =>
      new Promise<void>((resolve) => {
        clearInterval(timer)
        const giveUp = setTimeout(resolve, limitMs)
        const done = () => {
          clearTimeout(giveUp)
          resolve()
        }
        try {
          destination.flush(done)
        } catch {
          done() // stdout already closed: there is nothing left to save
        }
      })
  }
}

/** The process-wide logger handle, for the few places outside the Effect runtime (crash handlers). */
export class PinoHandle extends Context.Tag("app/PinoHandle")<PinoHandle, {
  readonly log: pino.Logger
  readonly redactor: Redactor
  /** Writes what is buffered, for at most `limitMs`; the rest is dropped (a stdout nobody reads never drains). */
  readonly flush: (limitMs: number) => Promise<void>
}>() {}

/**
 * pino as the Effect logger, with deep redaction of secret keys and of every secret config value.
 * Owns the pino destination: buffered lines are flushed when the layer is released, which is
 * last in the shutdown sequence (it is the outermost layer after the config), waiting at most 250 ms
 * (a real bound: a stdout nobody reads does not hold the exit).
 */
export const makeLoggerLive = (options: LoggerOptions = {}) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const config = yield* AppConfig
      const redactor = makeRedactor(config.secretValues)
      const { flush, log } = yield* Effect.acquireRelease(
        Effect.sync(() => makePino(config, options)),
        ({ flush }) => Effect.promise(() => flush(FLUSH_LIMIT_MS))
      )
      return Layer.mergeAll(
        Logger.replace(Logger.defaultLogger, makePinoLogger(log, redactor)),
        Logger.minimumLogLevel(minimumLevel(config.log.level)),
        Layer.succeed(PinoHandle, { log, redactor, flush })
      )
    })
  )

export const LoggerLive = makeLoggerLive()

