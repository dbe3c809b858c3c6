import { Duration, Effect, Layer, Runtime } from "effect"
import { eventOfMessage, type GenerationEvent, GenerationEventHub } from "../../services/generations/GenerationEvents.js"
import { progressChannel } from "../../services/jobs/queueNames.js"
import { Redis } from "../../services/platform/Redis.js"

/** How long a subscribe waits for Redis to confirm before the socket goes on (ioredis subscribes when Redis is back). */
const SUBSCRIBE_WAIT = Duration.seconds(2)

interface Entry {
  readonly listeners: Set<(event: GenerationEvent) => void>
  /** Settles when Redis has confirmed the SUBSCRIBE of this user's channel. */
  readonly subscribed: Promise<unknown>
}

/**
 * The process' one Redis subscriber for live progress: every socket of the process listens through
 * it, and a user's channel is subscribed while at least one of their sockets is open (SUBSCRIBE for
 * the first, UNSUBSCRIBE after the last; one connection keeps the commands in order, so a quick
 * close-and-reopen ends subscribed). Owns that connection, quit when the layer is released (after
 * the HTTP drain has closed the sockets).
 */
export const GenerationEventHubLive = Layer.scoped(
  GenerationEventHub,
  Effect.gen(function*() {
    const redis = yield* Redis
    const runtime = yield* Effect.runtime<never>()
    const subscriber = yield* redis.bullConnection("generation-events")
    const prefix = progressChannel(redis.keyPrefix, "")
    const users = new Map<string, Entry>()

    subscriber.on("message", (channel: string, message: string) => {
      if (!channel.startsWith(prefix)) return
      const entry = users.get(channel.slice(prefix.length))
      if (entry === undefined) return
      const event = eventOfMessage(message)
      if (event === undefined) return
      for (const listener of entry.listeners) {
        try {
          listener(event)
        } catch (error) {
          Runtime.runFork(runtime)(Effect.logWarning("generation event listener failed", { error: String(error) }))
        }
      }
    })

    const add = (userId: string, listener: (event: GenerationEvent) => void): Entry => {
      const existing = users.get(userId)
      if (existing !== undefined) {
        existing.listeners.add(listener)
        return existing
      }
      const entry: Entry = {
        listeners: new Set([listener]),
        subscribed: subscriber.subscribe(progressChannel(redis.keyPrefix, userId)).catch((error: unknown) =>
          Runtime.runFork(runtime)(Effect.logWarning("generation events: subscribe failed", { error: String(error) }))
        )
      }
      users.set(userId, entry)
      return entry
    }

    const remove = (userId: string, listener: (event: GenerationEvent) => void) => {
      const entry = users.get(userId)
      if (entry === undefined || !entry.listeners.delete(listener) || entry.listeners.size > 0) return
      users.delete(userId)
      void subscriber.unsubscribe(progressChannel(redis.keyPrefix, userId)).catch(() => undefined)
    }

    return GenerationEventHub.of({
      subscribe: (userId, listener) =>
        Effect.acquireRelease(Effect.sync(() => add(userId, listener)), () => Effect.sync(() => remove(userId, listener))).pipe(
          Effect.flatMap((entry) =>
            Effect.promise(() => entry.subscribed).pipe(
              Effect.timeout(SUBSCRIBE_WAIT),
              Effect.catchTag("TimeoutException", () => Effect.logWarning("generation events: redis has not confirmed the subscription yet"))
            )
          ),
          Effect.asVoid
        ),
      users: () => users.size
    })
  })
)
