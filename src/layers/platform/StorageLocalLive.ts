import { randomBytes } from "node:crypto"
import { constants, type Stats } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { NodeStream } from "@effect/platform-node"
import { Effect, Exit, Layer, Stream } from "effect"
import { AppConfig } from "../../services/platform/AppConfig.js"
import { openDirectWriter } from "../../services/platform/directWriter.js"
import { errorCodeOf } from "../../services/platform/errorCode.js"
import {
  describeStorageCause,
  makeHealthCheck,
  READ_CHUNK_BYTES,
  type ByteRange,
  type PutOptions,
  Storage,
  StorageError,
  StorageObjectNotFound,
  type StorageOp,
  validateStorageKey
} from "../../services/platform/Storage.js"

const TEMP_PREFIX = ".tmp-"
/** The put's write size (and the memory a put holds while it runs); a multiple of 64 KiB, as directWriter wants. */
const PUT_STAGE = 2 << 20
const STALE_TEMP_AGE_MS = 60 * 60 * 1000

const storageError = (op: StorageOp, key: string | undefined, cause: unknown) =>
  new StorageError({ op, key, reason: describeStorageCause(cause), cause })

const fsCall = <A>(op: StorageOp, key: string | undefined, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => storageError(op, key, e) })

/** lstat that reports a missing path (or a missing directory on the way) as undefined. */
const lstatIfExists = (op: StorageOp, key: string, target: string) =>
  Effect.tryPromise({ try: () => fs.lstat(target), catch: (e) => e }).pipe(
    Effect.map((s): Stats | undefined => s),
    Effect.catchAll((e) => {
      const code = errorCodeOf(e)
      return code === "ENOENT" || code === "ENOTDIR" ? Effect.succeed(undefined) : Effect.fail(storageError(op, key, e))
    })
  )

/** Best effort: temp files of writes that died with the process. Never follows symlinks. */
const removeStaleTempFiles = (root: string) =>
  Effect.tryPromise(async () => {
    const cutoff = Date.now() - STALE_TEMP_AGE_MS
    let removed = 0
    for await (const entry of await fs.opendir(root, { recursive: true })) {
      if (!entry.isFile() || !entry.name.startsWith(TEMP_PREFIX)) continue
      const file = path.join(entry.parentPath, entry.name)
      try {
        const s = await fs.lstat(file)
        if (s.isFile() && s.mtimeMs < cutoff) {
          await fs.unlink(file)
          removed++
        }
      } catch {
        // gone already, or not ours to remove: the sweep is best effort
      }
    }
    return removed
  }).pipe(
    Effect.flatMap((removed) =>
      removed > 0 ? Effect.logInfo("storage: removed stale temp files", { removed }) : Effect.void
    ),
    Effect.catchAll((e) =>
      Effect.logWarning("storage: stale temp file sweep failed", { reason: describeStorageCause(e.error) })
    )
  )

export const makeLocalStorage = (dir: string) =>
  Effect.gen(function*() {
    yield* fsCall("init", undefined, () => fs.mkdir(dir, { recursive: true }))
    const root = yield* fsCall("init", undefined, () => fs.realpath(dir))
    yield* removeStaleTempFiles(root)

    const inside = (real: string) => real === root || real.startsWith(root + path.sep)

    /**
     * Validates the key and returns its path, after checking that the deepest existing ancestor
     * of that path really lies inside the root (no symlinked directory leads out) and that the
     * target itself is not a symlink. Returns the target's lstat, undefined when it is missing.
     */
    const resolve = (op: StorageOp, key: string) =>
      Effect.gen(function*() {
        const valid = yield* validateStorageKey(key)
        const target = path.join(root, ...valid.split("/"))
        yield* ensureContained(op, key, target)
        const stats = yield* lstatIfExists(op, key, target)
        if (stats?.isSymbolicLink()) {
          return yield* new StorageError({ op, key, reason: "the target is a symbolic link" })
        }
        return { target, stats }
      })

    const ensureContained = (op: StorageOp, key: string, target: string) =>
      Effect.tryPromise({
        try: async () => {
          let current = target
          for (;;) {
            try {
              return await fs.realpath(current)
            } catch (e) {
              const code = errorCodeOf(e)
              if ((code !== "ENOENT" && code !== "ENOTDIR") || current === root) throw e
              current = path.dirname(current)
            }
          }
        },
        catch: (e) => storageError(op, key, e)
      }).pipe(
        Effect.filterOrFail(
          inside,
          () => new StorageError({ op, key, reason: "the path leads outside the storage root" })
        )
      )

    const put = Effect.fn("Storage.put")(function*<E>(
      key: string,
      body: Stream.Stream<Uint8Array, E>,
      _options?: PutOptions
    ) {
      const { target, stats } = yield* resolve("put", key)
      if (stats?.isDirectory()) {
        return yield* new StorageError({ op: "put", key, reason: "the key is a prefix of other keys" })
      }
      const dir = path.dirname(target)
      yield* fsCall("put", key, () => fs.mkdir(dir, { recursive: true }))
      yield* ensureContained("put", key, dir)
      const temp = path.join(dir, `${TEMP_PREFIX}${randomBytes(12).toString("hex")}`)
      const failed = (cause: unknown) => storageError("put", key, cause)
      // Written through services/platform/directWriter.ts (large writes past the page cache where the
      // filesystem allows: a stored object is not read back soon, and a large one would fill the pod's page
      // cache); O_EXCL: never an existing file or a symlink planted at the temp name. The scope closes the
      // handles before the rename; a write that failed or was interrupted leaves no temp file.
      const size = yield* Effect.scoped(Effect.gen(function*() {
        const writer = yield* openDirectWriter(temp, { exclusive: true, stage: PUT_STAGE }).pipe(Effect.mapError(failed))
        yield* body.pipe(Stream.runForEachChunk((chunk) => Effect.forEach(chunk, (bytes) => Effect.mapError(writer.write(bytes), failed), { discard: true })))
        yield* Effect.mapError(writer.finish, failed)
        yield* Effect.mapError(writer.datasync, failed)
        return writer.appended()
      })).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? Effect.promise(() => fs.unlink(temp).catch(() => undefined)) : Effect.void))
      // Publishing is not interrupted halfway: either the rename happens or the temp file is removed.
      yield* Effect.uninterruptible(
        Effect.gen(function*() {
          yield* resolve("put", key)
          yield* fsCall("put", key, () => fs.rename(temp, target))
        }).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? Effect.promise(() => fs.unlink(temp).catch(() => undefined)) : Effect.void))
      )
      return { key, size }
    })

    const stat = Effect.fn("Storage.stat")(function*(key: string) {
      const { stats } = yield* resolve("stat", key)
      if (stats === undefined || !stats.isFile()) return yield* new StorageObjectNotFound({ key })
      return { size: stats.size, modifiedAt: stats.mtime }
    })

    const get = Effect.fn("Storage.get")(function*(key: string, range?: ByteRange) {
      const { target, stats } = yield* resolve("get", key)
      if (stats === undefined || !stats.isFile()) return yield* new StorageObjectNotFound({ key })
      // Opened lazily, so a stream that is never run holds no descriptor; O_NOFOLLOW refuses a
      // symlink swapped in since the check.
      const open = Effect.acquireRelease(
        fsCall("get", key, () => fs.open(target, constants.O_RDONLY | constants.O_NOFOLLOW)),
        (handle) => Effect.promise(() => handle.close().catch(() => undefined))
      )
      return Stream.unwrapScoped(Effect.map(open, (handle) =>
        NodeStream.fromReadable<StorageError, Uint8Array>(
          () => handle.createReadStream({
            autoClose: false,
            highWaterMark: READ_CHUNK_BYTES,
            ...(range === undefined ? {} : { start: range.start, end: range.end })
          }),
          (e) => storageError("get", key, e)
        )))
    })

    const exists = Effect.fn("Storage.exists")(function*(key: string) {
      const { stats } = yield* resolve("exists", key)
      return stats !== undefined && stats.isFile()
    })

    const remove = Effect.fn("Storage.delete")(function*(key: string) {
      const { target, stats } = yield* resolve("delete", key)
      if (stats === undefined || !stats.isFile()) return
      yield* Effect.tryPromise({ try: () => fs.unlink(target), catch: (e) => e }).pipe(
        Effect.catchAll((e) => (errorCodeOf(e) === "ENOENT" ? Effect.void : Effect.fail(storageError("delete", key, e))))
      )
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
 * Objects as files under `storage.dir`, created if missing. At construction it sweeps temp files
 * older than an hour left by a crashed process. It holds nothing open between calls: a put owns
 * its temp file and descriptor until it publishes, and removes both when it fails or is
 * interrupted; a get's stream owns its descriptor while it runs. Nothing to release at shutdown.
 */
export const StorageLocalLive: Layer.Layer<Storage, StorageError, AppConfig> = Layer.effect(
  Storage,
  Effect.flatMap(AppConfig, (config) => makeLocalStorage(config.storage.dir))
)
