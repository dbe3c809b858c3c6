import { Context, Data, type Effect, type Scope } from "effect"
import type { Redis as IORedis } from "ioredis"

export class RedisError extends Data.TaggedError("RedisError")<{
  readonly op: string
  readonly cause: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `redis ${this.op} failed: ${cause}`
  }
}

export interface RedisShape {
  /**
   * The request-path connection: no offline queue and a command timeout, so a command fails at
   * once while Redis is unreachable and never hangs a request or a probe. Keys are prefixed with
   * `keyPrefix` by the client itself.
   */
  readonly client: IORedis
  readonly keyPrefix: string
  /** Runs one command on the request-path client, mapping failures to RedisError. */
  readonly use: <A>(op: string, f: (client: IORedis) => Promise<A>) => Effect.Effect<A, RedisError>
  /** PING; succeeds with the round trip in milliseconds. */
  readonly ping: Effect.Effect<number, RedisError>
  /**
   * A dedicated connection for BullMQ (no key prefix: BullMQ keeps its own), quit when the given
   * scope closes. Workers get maxRetriesPerRequest: null, as BullMQ requires for blocking calls;
   * producers (`{ producer: true }`) get no offline queue and the command timeout, so an enqueue
   * fails at once while Redis is down.
   */
  readonly bullConnection: (name: string, options?: { readonly producer?: boolean }) => Effect.Effect<IORedis, never, Scope.Scope>
}

export class Redis extends Context.Tag("app/Redis")<Redis, RedisShape>() {}
