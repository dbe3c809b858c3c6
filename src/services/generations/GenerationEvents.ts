import { Context, Duration, Effect, Either, Schema, type Scope } from "effect"
import { progressChannel } from "../jobs/queueNames.js"
import type { RedisShape } from "../platform/Redis.js"

/**
 * What a user's live-progress socket is told about their generations. Every event names its
 * generation; a settlement carries the final status (a partial delivery is `completed` with status
 * `partial`) and, for failed and cancelled ones, the reason the user is shown.
 */
export const GenerationProgressEvent = Schema.Struct({
  type: Schema.Literal("progress"),
  generationId: Schema.String,
  progress: Schema.Number,
  delivered: Schema.optional(Schema.Number)
})

export const GenerationSettledEvent = Schema.Struct({
  type: Schema.Literal("completed", "failed", "cancelled"),
  generationId: Schema.String,
  status: Schema.Literal("completed", "partial", "failed", "cancelled"),
  progress: Schema.Number,
  unitsRequested: Schema.Number,
  unitsDelivered: Schema.Number,
  refunded: Schema.Number,
  errorCode: Schema.NullOr(Schema.String),
  errorMessage: Schema.NullOr(Schema.String)
})
export type GenerationSettledEvent = typeof GenerationSettledEvent.Type

export const GenerationEvent = Schema.Union(GenerationProgressEvent, GenerationSettledEvent)
export type GenerationEvent = typeof GenerationEvent.Type

/**
 * The progress message the job runtime publishes (workers/jobs/runtime.ts): `percent`, plus what
 * the job added; a generation's job adds its `generationId`. Job progress that names no generation
 * is not a generation event.
 */
const RuntimeProgress = Schema.Struct({
  type: Schema.Literal("progress"),
  generationId: Schema.String,
  percent: Schema.Number,
  delivered: Schema.optional(Schema.Number)
})

const ChannelMessage = Schema.Union(RuntimeProgress, GenerationSettledEvent)
const decodeMessage = Schema.decodeUnknownEither(Schema.parseJson(ChannelMessage))

/** One message of a user's progress channel as a socket event; undefined when it is none. */
export const eventOfMessage = (raw: string): GenerationEvent | undefined => {
  const decoded = decodeMessage(raw)
  if (Either.isLeft(decoded)) return undefined
  const message = decoded.right
  if (!("percent" in message)) return message
  return {
    type: "progress",
    generationId: message.generationId,
    progress: Math.max(0, Math.min(100, Math.floor(message.percent))),
    ...(message.delivered === undefined ? {} : { delivered: message.delivered })
  }
}

/** How long a settlement's publish may take before it is dropped (the row is the truth; GET shows it). */
const PUBLISH_BUDGET = Duration.millis(500)

/**
 * Publishes a settlement on the user's progress channel. Best effort and bounded: a Redis that does
 * not answer costs a warning, never the settlement (it is committed already).
 */
export const publishSettled = (redis: RedisShape, userId: string, event: GenerationSettledEvent): Effect.Effect<void> =>
  redis.use("publish generation event", (c) => c.publish(progressChannel(redis.keyPrefix, userId), JSON.stringify(event))).pipe(
    Effect.timeout(PUBLISH_BUDGET),
    Effect.catchAll((error) =>
      Effect.logWarning("generation event not published", { generationId: event.generationId, error: String(error) })
    ),
    Effect.asVoid
  )

export interface GenerationEventHubShape {
  /**
   * Calls `listener` with every event of `userId`'s generations until the scope closes. Completes
   * once the process listens to the user's channel (or after a bounded wait while Redis is away:
   * the subscription is then made when it is back).
   */
  readonly subscribe: (userId: string, listener: (event: GenerationEvent) => void) => Effect.Effect<void, never, Scope.Scope>
  /** Users with at least one listener in this process. */
  readonly users: () => number
}

/** The process' one listener to the users' progress channels (layers/generations/GenerationEventHubLive.ts). */
export class GenerationEventHub extends Context.Tag("app/GenerationEventHub")<GenerationEventHub, GenerationEventHubShape>() {}
