import { randomBytes } from "node:crypto"
import { Chunk, Context, Data, Effect, Either, Predicate, Stream } from "effect"
import { errorCodeOf } from "./errorCode.js"

/** The key was rejected before any storage access. Never carries the key itself: it may be hostile. */
export class InvalidStorageKey extends Data.TaggedError("InvalidStorageKey")<{
  readonly reason: string
}> {
  override get message() {
    return `invalid storage key: ${this.reason}`
  }
}

export class StorageObjectNotFound extends Data.TaggedError("StorageObjectNotFound")<{
  readonly key: string
}> {
  override get message() {
    return `storage object not found: ${this.key}`
  }
}

export type StorageOp = "init" | "put" | "get" | "stat" | "exists" | "delete" | "healthCheck"

/**
 * The backend failed. `reason` is safe to log (an errno code or a fixed text, never a host path);
 * `cause` keeps the original error, whose own message may name host paths.
 */
export class StorageError extends Data.TaggedError("StorageError")<{
  readonly op: StorageOp
  readonly key?: string | undefined
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `storage ${this.op}${this.key === undefined ? "" : ` of ${this.key}`} failed: ${this.reason}`
  }
}

/** A safe one-line description of a backend error: errno code and syscall, never the error's message. */
export const describeStorageCause = (cause: unknown): string => {
  const code = errorCodeOf(cause)
  if (code === undefined) return "unexpected error"
  const syscall = Predicate.hasProperty(cause, "syscall") && typeof cause.syscall === "string" ? ` (${cause.syscall})` : ""
  return `${code}${syscall}`
}

export interface PutOptions {
  /** Advisory; backends may not persist it. */
  readonly contentType?: string
}

export interface StoredObject {
  readonly key: string
  readonly size: number
}

/** Bytes `start` to `end`, both inclusive (an HTTP Range); both within the object. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

export interface StorageStat {
  readonly size: number
  readonly modifiedAt: Date
}

export interface StorageShape {
  /** Streams `body` to a temporary object, then publishes it atomically; on failure or interruption nothing is. */
  readonly put: <E>(
    key: string,
    body: Stream.Stream<Uint8Array, E>,
    options?: PutOptions
  ) => Effect.Effect<StoredObject, StorageError | InvalidStorageKey | E>
  /**
   * Checks that the object exists; the returned stream reads it (or only `range` of it) lazily, each time
   * it is run.
   */
  readonly get: (
    key: string,
    range?: ByteRange
  ) => Effect.Effect<Stream.Stream<Uint8Array, StorageError>, StorageObjectNotFound | InvalidStorageKey | StorageError>
  readonly stat: (key: string) => Effect.Effect<StorageStat, StorageObjectNotFound | InvalidStorageKey | StorageError>
  readonly exists: (key: string) => Effect.Effect<boolean, InvalidStorageKey | StorageError>
  /** Deleting a missing key succeeds. */
  readonly delete: (key: string) => Effect.Effect<void, InvalidStorageKey | StorageError>
  /** Writes, reads back and deletes a probe object under `_health/`. */
  readonly healthCheck: Effect.Effect<void, StorageError>
}

export class Storage extends Context.Tag("app/Storage")<Storage, StorageShape>() {}

/** Chunk size of streamed reads, the same for every backend. */
export const READ_CHUNK_BYTES = 64 * 1024

export const MAX_KEY_LENGTH = 512
export const MAX_KEY_SEGMENTS = 16
/** NAME_MAX of common filesystems, so a valid key is storable by every backend. */
export const MAX_SEGMENT_LENGTH = 255
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/
// C0 controls, DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/**
 * The only key check, shared by every implementation. Keys are opaque: never URL-decoded or
 * normalised, so anything that could mean something to a filesystem or a decoder is refused.
 */
export const validateStorageKey = (key: string): Either.Either<string, InvalidStorageKey> => {
  const invalid = (reason: string) => Either.left(new InvalidStorageKey({ reason }))
  // Keys may come from untyped input (JSON, headers) despite the signature.
  if (typeof key !== "string") return invalid("not a string")
  if (key.length === 0) return invalid("empty")
  if (key.length > MAX_KEY_LENGTH) return invalid(`longer than ${MAX_KEY_LENGTH} characters`)
  if (CONTROL.test(key)) return invalid("contains a control character")
  if (key.includes("\\")) return invalid("contains a backslash")
  if (key.includes("%")) return invalid("contains a percent sign")
  if (key.includes(":")) return invalid("contains a colon")
  if (key.startsWith("/")) return invalid("absolute")
  if (key.includes("..")) return invalid("contains '..'")
  const segments = key.split("/")
  if (segments.length > MAX_KEY_SEGMENTS) return invalid(`more than ${MAX_KEY_SEGMENTS} segments`)
  for (const segment of segments) {
    if (segment.length === 0) return invalid("empty segment")
    if (segment === ".") return invalid("'.' segment")
    if (segment.length > MAX_SEGMENT_LENGTH) return invalid(`a segment is longer than ${MAX_SEGMENT_LENGTH} characters`)
    if (!SEGMENT.test(segment)) {
      return invalid("segments must match [A-Za-z0-9_][A-Za-z0-9._-]*")
    }
  }
  return Either.right(key)
}

export const HEALTH_PREFIX = "_health/"

/**
 * The health probe shared by the implementations: put, read back, compare, delete. Every failure
 * is reported as a StorageError.
 */
export const makeHealthCheck = (
  ops: Pick<StorageShape, "put" | "get" | "delete">
): Effect.Effect<void, StorageError> =>
  Effect.gen(function*() {
    const key = `${HEALTH_PREFIX}${randomBytes(12).toString("hex")}`
    const probe = new Uint8Array(randomBytes(4096))
    const asStorageError = (e: StorageError | InvalidStorageKey | StorageObjectNotFound) =>
      e._tag === "StorageError" ? e : new StorageError({ op: "healthCheck", key, reason: e.message, cause: e })
    const check = Effect.gen(function*() {
      yield* ops.put(key, Stream.make(probe.subarray(0, 1024), probe.subarray(1024)))
      const body = yield* ops.get(key)
      const chunks = yield* Stream.runCollect(body)
      const read = Buffer.concat(Chunk.toReadonlyArray(chunks))
      if (!read.equals(probe)) {
        return yield* new StorageError({
          op: "healthCheck",
          key,
          reason: `read back ${read.byteLength} bytes that differ from the ${probe.byteLength} written`
        })
      }
      yield* ops.delete(key)
    })
    // On failure or interruption the probe is still removed, best effort; the first error is the one reported.
    yield* check.pipe(
      Effect.mapError(asStorageError),
      Effect.onError(() => Effect.ignore(ops.delete(key)))
    )
  })
