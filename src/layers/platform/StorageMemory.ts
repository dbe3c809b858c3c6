import { Effect, Layer, Stream } from "effect"
import {
  type ByteRange,
  makeHealthCheck,
  READ_CHUNK_BYTES,
  type PutOptions,
  Storage,
  StorageError,
  StorageObjectNotFound,
  type StorageOp,
  validateStorageKey
} from "../../services/platform/Storage.js"

interface MemoryObject {
  readonly bytes: Uint8Array
  readonly modifiedAt: Date
}


function* slices(bytes: Uint8Array) {
  for (let offset = 0; offset < bytes.byteLength; offset += READ_CHUNK_BYTES) {
    yield bytes.slice(offset, offset + READ_CHUNK_BYTES)
  }
}

export const makeMemoryStorage = Effect.sync(() => {
  const objects = new Map<string, MemoryObject>()

  const isPrefix = (key: string) => {
    for (const other of objects.keys()) if (other.startsWith(`${key}/`)) return true
    return false
  }

  // The local backend cannot store `a` and `a/b` together (one would be a file and a directory); nor can this one.
  const checkConflicts = (op: StorageOp, key: string) => {
    if (isPrefix(key)) return Effect.fail(new StorageError({ op, key, reason: "the key is a prefix of other keys" }))
    const segments = key.split("/")
    for (let i = 1; i < segments.length; i++) {
      if (objects.has(segments.slice(0, i).join("/"))) {
        return Effect.fail(new StorageError({ op, key, reason: "a prefix of the key is an object" }))
      }
    }
    return Effect.void
  }

  const put = Effect.fn("Storage.put")(function*<E>(
    key: string,
    body: Stream.Stream<Uint8Array, E>,
    _options?: PutOptions
  ) {
    yield* validateStorageKey(key)
    yield* checkConflicts("put", key)
    const parts: Array<Uint8Array> = []
    let size = 0
    yield* Stream.runForEach(body, (bytes) =>
      Effect.sync(() => {
        parts.push(bytes.slice())
        size += bytes.byteLength
      }))
    const bytes = new Uint8Array(size)
    let offset = 0
    for (const part of parts) {
      bytes.set(part, offset)
      offset += part.byteLength
    }
    yield* checkConflicts("put", key)
    objects.set(key, { bytes, modifiedAt: new Date() })
    return { key, size }
  })

  const find = (key: string) =>
    Effect.gen(function*() {
      yield* validateStorageKey(key)
      const object = objects.get(key)
      if (object === undefined) return yield* new StorageObjectNotFound({ key })
      return object
    })

  const get = Effect.fn("Storage.get")(function*(key: string, range?: ByteRange) {
    const { bytes } = yield* find(key)
    const part = range === undefined ? bytes : bytes.subarray(range.start, range.end + 1)
    return Stream.suspend(() => Stream.fromIterable(slices(part)))
  })

  const stat = Effect.fn("Storage.stat")(function*(key: string) {
    const { bytes, modifiedAt } = yield* find(key)
    return { size: bytes.byteLength, modifiedAt }
  })

  const exists = Effect.fn("Storage.exists")(function*(key: string) {
    yield* validateStorageKey(key)
    return objects.has(key)
  })

  const remove = Effect.fn("Storage.delete")(function*(key: string) {
    yield* validateStorageKey(key)
    objects.delete(key)
  })

  const ops = { put, get, delete: remove }
  return Storage.of({
    put,
    get,
    stat,
    exists,
    delete: remove,
    healthCheck: Effect.fn("Storage.healthCheck")(() => makeHealthCheck(ops))()
  })
})

/**
 * The test double for Storage, swapped in by unit tests: objects live in a Map owned by the
 * layer instance (shared by every test using the same layer). Same key validation and errors as
 * StorageLocalLive, and put still consumes its stream before anything becomes visible.
 */
export const StorageMemory: Layer.Layer<Storage> = Layer.effect(Storage, makeMemoryStorage)
