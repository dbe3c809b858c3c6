import { Context } from "effect"

/** One access-log line: a request answered, with its route template, status and duration. */
export interface AccessLine {
  readonly method: string
  /** A route template or a fixed path (never a raw URL: it is written unredacted). */
  readonly route: string
  readonly status: number
  readonly durationMs: number
  /** Checked against the request-id pattern (or generated) before it gets here. */
  readonly requestId: string
}

/**
 * The writer of access lines for requests answered at the Node level (the probes, the lean routes),
 * outside any fiber. Every field is trusted by construction (see AccessLine), so the logger layer can
 * write the line straight to its sink without the general path's redaction and annotation merging,
 * the same line as `Effect.logInfo("request", fields)` under a `requestId` annotation gives.
 */
export class AccessLog extends Context.Tag("app/AccessLog")<AccessLog, {
  readonly write: (line: AccessLine) => void
}>() {}
