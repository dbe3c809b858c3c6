import type { Writable } from "node:stream"
import { Cause, Context, Effect, HashMap, Layer, List, Logger, LogLevel } from "effect"
import pino from "pino"
import pinoPretty from "pino-pretty"
import { AccessLog } from "../../services/platform/AccessLog.js"
import { AppConfig, type AppConfigShape, type LogFormat, type LogLevelName } from "../../services/platform/AppConfig.js"
import { makeRedactor, type Redactor, typeName } from "../../services/platform/redact.js"

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
 * annotations become fields, spans become `spans.<label>` durations, a cause becomes `err` (its
 * rendering) and `errType` (the classes of its failures and defects).
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
      // The rendering names an Error subclass by its `name`, often just "Error": keep the classes.
      const types = [...Cause.failures(cause), ...Cause.defects(cause)].map(typeName)
      if (types.length > 0) fields["errType"] = types.join(", ")
    }
    log[effectToPino(logLevel)](redactor.value(fields) as object, redactor.text(parts.join(" ")))
  })

/**
 * Access lines written straight to pino's stream, built from pino's own parts (its level prefix,
 * clock and bindings): an AccessLine's fields need no redaction and have fixed types, so the line
 * is one template string. Through the general path (options, annotation map, redaction, pino's
 * generic serialisation) the line was most of a probe's CPU. It is byte for byte the line pino writes
 * for `log.info({ method, route, status, durationMs, requestId }, "request")`, the one makePinoLogger
 * writes for the access line of the Effect path (a test compares them); other formats (pretty) take
 * that call itself.
 */
export const makePinoAccessLog = (log: pino.Logger, format: LogFormat): AccessLog["Type"] => {
  if (!log.isLevelEnabled("info")) return { write: () => undefined }
  if (format !== "json") {
    return { write: ({ durationMs, method, requestId, route, status }) => log.info({ method, route, status, durationMs, requestId }, "request") }
  }
  // pino's own parts of a line; the symbols are pino's public API (pino.symbols).
  const parts = log as unknown as Record<symbol, unknown>
  const head = (parts[pino.symbols.lsCacheSym] as Record<number, string>)[log.levels.values["info"]!]!
  const time = parts[pino.symbols.timeSym] as () => string
  const bindings = parts[pino.symbols.chindingsSym] as string
  const stream = parts[pino.symbols.streamSym] as { write: (line: string) => unknown }
  // Methods and routes come from small fixed sets (route templates); each is quoted once.
  const quoted = new Map<string, string>()
  const quote = (text: string) => {
    let json = quoted.get(text)
    if (json === undefined) {
      json = JSON.stringify(text)
      if (quoted.size < 1024) quoted.set(text, json)
    }
    return json
  }
  return {
    write: ({ durationMs, method, requestId, route, status }) =>
      stream.write(
        `${head}${time()}${bindings},"method":${quote(method)},"route":${quote(route)},"status":${status},` +
          `"durationMs":${Number.isFinite(durationMs) ? durationMs : null},"requestId":${JSON.stringify(requestId)},"msg":"request"}\n`
      )
  }
}

/** The keys pino writes itself; a logged field of the same name would be a second, winning copy. */
const OWN_KEYS = ["level", "time", "msg", "service", "env", "pid"] as const

/**
 * A logged object's fields that collide with the line's own keys are renamed with a leading `_`
 * (`{ level: "fatal" }` becomes `_level`), so data cannot change a line's level, time or message.
 */
export const guardOwnKeys = (fields: Record<string, unknown>): Record<string, unknown> => {
  if (!OWN_KEYS.some((key) => key in fields)) return fields
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fields)) {
    out[(OWN_KEYS as ReadonlyArray<string>).includes(key) ? `_${key}` : key] = value
  }
  return out
}

/** Control characters (newlines, ANSI escapes), written as escapes; `keepNewlines` for stacks. */
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/
const CONTROLS = new RegExp(CONTROL.source, "g")
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g
const escapeChar = (c: string) => c === "\n" ? "\\n" : c === "\r" ? "\\r" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
export const escapeControl = (text: string, keepNewlines = false): string =>
  CONTROL.test(text) ? text.replace(keepNewlines ? CONTROLS_BUT_NEWLINE : CONTROLS, escapeChar) : text

/**
 * What pino-pretty prints raw, made printable: it JSON-quotes values but prints the message, keys
 * and error stacks as they are, so a newline there would start what looks like a new line (stacks
 * keep their newlines: pino-pretty indents every stack line).
 */
const printable = (value: unknown, depth = 0): unknown => {
  if (typeof value !== "object" || value === null || depth > 16) return value
  if (Array.isArray(value)) return value.map((item) => printable(item, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    out[escapeControl(key)] = key === "stack" && typeof item === "string" ? escapeControl(item, true) : printable(item, depth + 1)
  }
  return out
}

/** pino's isoTime, formatted once per millisecond: under load many lines share one. */
const isoTimeOncePerMs = (() => {
  let at = -1
  let time = ""
  return () => {
    const now = Date.now()
    if (now !== at) {
      at = now
      time = `,"time":"${new Date(now).toISOString()}"`
    }
    return time
  }
})()

/**
 * The options every pino instance of the app shares. `formatters.log` guards the line's own keys
 * (this covers direct pino calls such as the crash handlers' too) and, in pretty mode, makes keys
 * and stacks printable; the `err` serializer is the identity because fields arrive already
 * redacted, and pino's own would rewrite a redacted error's `type` to "Object".
 */
export const pinoOptions = (level: LogLevelName, env: string, format: LogFormat = "json"): pino.LoggerOptions => ({
  level,
  base: { service: "lumiku-backend", env, pid: process.pid },
  timestamp: isoTimeOncePerMs,
  formatters: { log: format === "pretty" ? (fields) => guardOwnKeys(printable(fields) as Record<string, unknown>) : guardOwnKeys },
  serializers: { err: (value: unknown) => value }
})

/**
 * Lines collected over one event-loop turn and handed on as one string (at setImmediate, or at once
 * by `drain`), in order. A batch the writer refuses by throwing (its stream is closed: the process
 * is ending) is dropped: there is nowhere left to write it, and the throw, in a setImmediate, would
 * be an uncaught exception.
 */
export const lineBatch = (write: (batch: string) => unknown) => {
  let lines: Array<string> = []
  const drain = () => {
    if (lines.length === 0) return
    const batch = lines.length === 1 ? lines[0]! : lines.join("")
    lines = []
    try {
      write(batch)
    } catch {
      // dropped, as above
    }
  }
  return {
    write: (line: string) => {
      if (lines.push(line) === 1) setImmediate(drain)
      return true
    },
    drain
  }
}

// Within the 500 ms the shutdown cap keeps free for it (services/Lifecycle.ts): the cap's own timer is
// gone by the time the logger, the outermost layer, is released.
const FLUSH_LIMIT_MS = 250
const SYNC_FLUSH_LIMIT_MS = 200
/** Bytes collected before a write to stdout. */
const MIN_WRITE = 4096

export interface LoggerOptions {
  /** Where lines go (JSON or pretty, as configured); stdout by default. Tests pass a stream to capture them. */
  readonly destination?: Writable
}

const makePino = (config: AppConfigShape, options: LoggerOptions) => {
  const shared = pinoOptions(config.log.level, config.env, config.log.format)
  if (config.log.format === "pretty") {
    const pretty = pinoPretty({
      sync: true,
      colorize: options.destination === undefined && process.stdout.isTTY,
      translateTime: "HH:MM:ss.l",
      ignore: "pid,hostname,service,env",
      // Field values are printed JSON-quoted and stacks indented; the message is printed raw, so a
      // newline in it would start what looks like a new line.
      messageFormat: (line, key) => escapeControl(String(line[key] ?? "")),
      ...(options.destination !== undefined ? { destination: options.destination } : {})
    })
    return { log: pino(shared, pretty), flush: (_limitMs: number) => Promise.resolve() }
  }
  if (options.destination !== undefined) {
    return { log: pino(shared, options.destination), flush: (_limitMs: number) => Promise.resolve() }
  }
  // Lines are batched (one write per 4 KiB instead of one per line, which showed as the largest
  // single cost under load) and flushed at least every 100 ms, so a quiet process still logs promptly.
  // pino writes fatal lines (and pending lines at process exit) with flushSync, which retries EAGAIN
  // forever when nobody reads stdout, blocking the thread: bounded here, the rest is dropped.
  let syncDeadline: number | undefined
  const destination = pino.destination({
    dest: 1,
    sync: false,
    minLength: MIN_WRITE,
    retryEAGAIN: () => syncDeadline === undefined || Date.now() < syncDeadline
  })
  // The lines of one event-loop turn reach sonic-boom as one string: its write measures the UTF-8
  // length of the whole chunk it appends to, once per call, which per line cost more than the line.
  const turn = lineBatch((batch) => destination.write(batch))
  const flushSync = destination.flushSync.bind(destination)
  // sonic-boom keeps minLength on the instance (its typings leave it out).
  const thresholds = destination as unknown as { minLength: number }
  destination.flushSync = () => {
    // The lines of this turn join the queue that flushSync writes: with the threshold lifted they
    // cannot start an asynchronous write, which an exiting process would never finish.
    thresholds.minLength = Number.POSITIVE_INFINITY
    turn.drain()
    thresholds.minLength = MIN_WRITE
    syncDeadline = Date.now() + SYNC_FLUSH_LIMIT_MS
    try {
      flushSync()
    } catch {
      // stdout is full or gone: what is left is dropped rather than block the process
    } finally {
      syncDeadline = undefined
    }
  }
  const flush = destination.flush.bind(destination)
  destination.flush = (done?: (error?: Error) => void) => {
    turn.drain()
    flush(done)
  }
  const stream: pino.DestinationStream & { readonly flushSync: () => void } = { write: turn.write, flushSync: destination.flushSync }
  const timer = setInterval(() => {
    try {
      destination.flush()
    } catch {
      // stdout is gone (the process is ending); there is nowhere left to write
    }
  }, 100)
  timer.unref()
  return {
    // pino flushes its stream synchronously on fatal lines: through to the destination.
    log: pino(shared, stream),
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
 * pino as the Effect logger, with deep redaction of secret keys, of every secret config value and
 * of secrets recognisable by shape inside strings (see redact.ts).
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
        Layer.succeed(PinoHandle, { log, redactor, flush }),
        Layer.succeed(AccessLog, makePinoAccessLog(log, config.log.format))
      )
    })
  )

export const LoggerLive = makeLoggerLive()

