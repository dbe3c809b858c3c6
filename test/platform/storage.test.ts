import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Context, Data, Deferred, Effect, Either, Exit, Fiber, Layer, Stream } from "effect"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { StorageLocalLive } from "../../src/layers/platform/StorageLocalLive.js"
import { StorageMemory } from "../../src/layers/platform/StorageMemory.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { Storage, validateStorageKey } from "../../src/services/platform/Storage.js"

/**
 * Where a test backend keeps its files. For the local backend the root sits three levels deep in
 * a fresh temp dir, next to an empty `sentinel` dir, so an escape of up to three `..` would land
 * somewhere this file can see.
 */
class TestFiles extends Context.Tag("test/TestFiles")<TestFiles, {
  readonly container: string
  readonly root: string
  readonly sentinel: string
} | undefined>() {}

class Boom extends Data.TaggedError("Boom")<{}> {}

const LocalFiles = Layer.scoped(
  TestFiles,
  Effect.acquireRelease(
    Effect.sync(() => {
      const container = fs.mkdtempSync(path.join(os.tmpdir(), "storage-test-"))
      const parent = path.join(container, "l1", "l2")
      const sentinel = path.join(parent, "sentinel")
      fs.mkdirSync(sentinel, { recursive: true })
      return { container, root: path.join(parent, "root"), sentinel }
    }),
    ({ container }) => Effect.sync(() => fs.rmSync(container, { recursive: true, force: true }))
  )
)

const configFor = Layer.effect(
  AppConfig,
  Effect.flatMap(TestFiles, (files) => appConfigFrom({ STORAGE_DIR: files?.root ?? "unused" }))
)

const LocalTest = StorageLocalLive.pipe(Layer.provideMerge(configFor), Layer.provideMerge(LocalFiles))
const MemoryTest = Layer.merge(StorageMemory, Layer.succeed(TestFiles, undefined))

/** Every path under `dir`, relative, without following symlinks. */
const walk = (dir: string, base = dir): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    const rel = path.relative(base, full)
    return entry.isDirectory() ? [rel, ...walk(full, base)] : [rel]
  })

const tempFiles = (root: string) => walk(root).filter((p) => path.basename(p).startsWith(".tmp-"))

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => {
    const parts = Chunk.toReadonlyArray(chunks)
    return { bytes: Buffer.concat(parts), parts: parts.length, largest: Math.max(0, ...parts.map((p) => p.byteLength)) }
  })

const text = (s: string) => Stream.make(new TextEncoder().encode(s))

const readText = (key: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const { bytes } = yield* collect(yield* storage.get(key))
    return bytes.toString("utf8")
  })

/** A body that writes `chunks`, signals `started`, then never ends. */
const stalledBody = (chunks: ReadonlyArray<Uint8Array>, started: Deferred.Deferred<void>) =>
  Stream.fromIterable(chunks).pipe(
    Stream.concat(Stream.fromEffect(Deferred.succeed(started, undefined)).pipe(Stream.drain)),
    Stream.concat(Stream.never)
  )

const contract = (name: string, backend: Layer.Layer<Storage | TestFiles, unknown>) =>
  layer(backend, { timeout: "30 seconds" })(`Storage contract: ${name}`, (it) => {
    it.effect("roundtrips an 8 MiB stream of 64 KiB chunks byte for byte", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const payload = randomBytes(8 * 1024 * 1024)
        const chunks = Array.from({ length: 128 }, (_, i) => payload.subarray(i * 65536, (i + 1) * 65536))
        const stored = yield* storage.put("roundtrip/big.bin", Stream.fromIterable(chunks), {
          contentType: "application/octet-stream"
        })
        expect(stored).toEqual({ key: "roundtrip/big.bin", size: payload.byteLength })
        const read = yield* collect(yield* storage.get("roundtrip/big.bin"))
        expect(read.bytes.equals(payload)).toBe(true)
        expect(read.parts).toBeGreaterThan(1)
        expect(read.largest).toBeLessThanOrEqual(64 * 1024)
        expect((yield* storage.stat("roundtrip/big.bin")).size).toBe(payload.byteLength)
      }))

    it.effect("an empty body stores an empty object", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        expect(yield* storage.put("empty/object", Stream.empty)).toEqual({ key: "empty/object", size: 0 })
        expect(yield* readText("empty/object")).toBe("")
      }))

    it.effect("a stream can be read more than once", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        yield* storage.put("reread/x.txt", text("again"))
        const body = yield* storage.get("reread/x.txt")
        expect((yield* collect(body)).bytes.toString()).toBe("again")
        expect((yield* collect(body)).bytes.toString()).toBe("again")
      }))

    it.effect("overwrite replaces the object", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        yield* storage.put("overwrite/a.txt", text("the first, longer version"))
        const second = yield* storage.put("overwrite/a.txt", text("second"))
        expect(second.size).toBe(6)
        expect(yield* readText("overwrite/a.txt")).toBe("second")
        expect((yield* storage.stat("overwrite/a.txt")).size).toBe(6)
      }))

    it.effect("stat, exists and delete", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const before = Date.now()
        yield* storage.put("lifecycle/x.txt", text("hello"))
        const s = yield* storage.stat("lifecycle/x.txt")
        expect(s.size).toBe(5)
        expect(s.modifiedAt).toBeInstanceOf(Date)
        expect(s.modifiedAt.getTime()).toBeGreaterThan(before - 60_000)
        expect(s.modifiedAt.getTime()).toBeLessThan(Date.now() + 60_000)
        expect(yield* storage.exists("lifecycle/x.txt")).toBe(true)
        expect(yield* storage.exists("lifecycle/other.txt")).toBe(false)
        yield* storage.delete("lifecycle/x.txt")
        expect(yield* storage.exists("lifecycle/x.txt")).toBe(false)
        expect((yield* Effect.flip(storage.stat("lifecycle/x.txt")))._tag).toBe("StorageObjectNotFound")
        yield* storage.delete("lifecycle/x.txt")
        yield* storage.delete("never/existed/at/all")
      }))

    it.effect("get and stat of a missing key fail with StorageObjectNotFound", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const getError = yield* Effect.flip(storage.get("missing/nothing.bin"))
        expect(getError._tag).toBe("StorageObjectNotFound")
        expect(getError.message).toBe("storage object not found: missing/nothing.bin")
        expect((yield* Effect.flip(storage.stat("missing/nothing.bin")))._tag).toBe("StorageObjectNotFound")
      }))

    it.effect("a key that is a prefix of other keys is not an object", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        yield* storage.put("prefix/inner/x.txt", text("x"))
        expect(yield* storage.exists("prefix/inner")).toBe(false)
        expect((yield* Effect.flip(storage.get("prefix/inner")))._tag).toBe("StorageObjectNotFound")
        expect((yield* Effect.flip(storage.put("prefix/inner", text("y"))))._tag).toBe("StorageError")
        expect((yield* Effect.flip(storage.put("prefix/inner/x.txt/deeper", text("y"))))._tag).toBe("StorageError")
        yield* storage.delete("prefix/inner")
        expect(yield* readText("prefix/inner/x.txt")).toBe("x")
      }))

    it.effect("a body that fails midway leaves no object, keeps the old one and no temp file", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const files = yield* TestFiles
        const boom = new Boom()
        const failing = Stream.make(randomBytes(65536), randomBytes(65536)).pipe(Stream.concat(Stream.fail(boom)))
        expect(yield* Effect.flip(storage.put("failing/new.bin", failing))).toBe(boom)
        expect(yield* storage.exists("failing/new.bin")).toBe(false)
        expect((yield* Effect.flip(storage.get("failing/new.bin")))._tag).toBe("StorageObjectNotFound")

        yield* storage.put("failing/old.txt", text("old"))
        expect(yield* Effect.flip(storage.put("failing/old.txt", failing))).toBe(boom)
        expect(yield* readText("failing/old.txt")).toBe("old")
        if (files !== undefined) {
          expect(tempFiles(files.root)).toEqual([])
          expect(fs.existsSync(path.join(files.root, "failing", "new.bin"))).toBe(false)
        }
      }))

    it.effect("interrupting a put mid-stream leaves no object and no temp file", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const files = yield* TestFiles
        yield* storage.put("interrupted/old.txt", text("old"))
        for (const key of ["interrupted/new.bin", "interrupted/old.txt"]) {
          const started = yield* Deferred.make<void>()
          const body = stalledBody([randomBytes(65536), randomBytes(1000)], started)
          const fiber = yield* Effect.fork(storage.put(key, body))
          yield* Deferred.await(started)
          if (files !== undefined) {
            // The body goes into a temp file next to the target, in whole stages of 2 MiB (directWriter.ts):
            // its first 66,536 bytes are still staged in memory.
            const temps = tempFiles(files.root)
            expect(temps).toHaveLength(1)
            expect(path.dirname(temps[0]!)).toBe("interrupted")
            expect(fs.statSync(path.join(files.root, temps[0]!)).size).toBe(0)
          }
          const exit = yield* Fiber.interrupt(fiber)
          expect(Exit.isInterrupted(exit)).toBe(true)
          if (files !== undefined) expect(tempFiles(files.root)).toEqual([])
        }
        expect(yield* storage.exists("interrupted/new.bin")).toBe(false)
        expect(yield* readText("interrupted/old.txt")).toBe("old")
      }))

    it.effect("healthCheck succeeds and leaves no probe behind", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const files = yield* TestFiles
        yield* storage.healthCheck
        yield* storage.healthCheck
        if (files !== undefined) {
          expect(walk(files.root).filter((p) => p.startsWith("_health/"))).toEqual([])
          expect(tempFiles(files.root)).toEqual([])
        }
      }))

    it.effect("an invalid key fails with InvalidStorageKey and the body is never read", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        let pulled = 0
        const body = Stream.fromEffect(Effect.sync(() => (pulled++, new Uint8Array(1))))
        for (const key of ["../x", "a//b", "/etc/passwd", ".hidden", "a%2fb"]) {
          expect((yield* Effect.flip(storage.put(key, body)))._tag).toBe("InvalidStorageKey")
          expect((yield* Effect.flip(storage.get(key)))._tag).toBe("InvalidStorageKey")
          expect((yield* Effect.flip(storage.exists(key)))._tag).toBe("InvalidStorageKey")
        }
        expect(pulled).toBe(0)
      }))
  })

contract("StorageLocalLive", LocalTest)
contract("StorageMemory", MemoryTest)

const TRAVERSAL_KEYS: ReadonlyArray<string> = [
  "",
  ".",
  "..",
  "../",
  "..\\",
  "..\\/",
  "../x",
  "../sentinel/pwned",
  "../../l2/sentinel/pwned",
  "../../../l1/l2/sentinel/pwned",
  "a/../../sentinel/pwned",
  "a/../../x",
  "a/..",
  "a/../b",
  "%2e%2e%2f",
  "%2e%2e/sentinel/pwned",
  "..%2fsentinel%2fpwned",
  "%252e%252e%252f",
  "%c0%ae%c0%ae%c0%af",
  "%uff0e%uff0e%u2215",
  "..././",
  "....//",
  ".../x",
  "...\\.\\",
  "..;/",
  "..;/sentinel/pwned",
  "\\\\localhost\\c$\\windows\\win.ini",
  "////../../",
  "/",
  "a/%00b",
  "a\u0000b",
  "a/b\u0000.mp4",
  "a\nb",
  "a\rb",
  "a\tb",
  "a\u007fb",
  "a\u0085b",
  "/etc/passwd",
  "/proc/self/environ",
  "/var/run/secrets/kubernetes.io/serviceaccount/token",
  "./a",
  "a/./b",
  "a/.",
  "a//b",
  "a/b/",
  "C:\\x",
  "C:/x",
  "file:///etc/passwd",
  ".hidden",
  "a/.tmp-123",
  "-rf",
  "a/-rf",
  "~/x",
  "$HOME/x",
  "a b",
  "a?b",
  "a#b",
  "a*b",
  "\u2025/x",
  "\uff0e\uff0e/x",
  "\uff0e\uff0e\u2215sentinel",
  "..\u2215x",
  "a\u2216b",
  "\u202e..",
  "a/\u200b",
  "\uff45\uff54\uff43/passwd",
  "a".repeat(513),
  "k".repeat(256),
  `${"d".repeat(255)}/${"e".repeat(255)}/x`,
  `${"a/".repeat(200)}x`,
  "a".repeat(100_000),
  `${"s/".repeat(16)}x`
]

const VALID_KEYS: ReadonlyArray<string> = [
  "videos/u1/abc_123.mp4",
  "a",
  "_x",
  "0",
  "A-b_c.d",
  "thumbs/2024-01-01/frame.0001.jpg",
  "ends.with.dot.",
  "dash-",
  `${"s/".repeat(15)}x`,
  "k".repeat(255),
  `${"d".repeat(255)}/${"e".repeat(254)}/x`
]

describe("validateStorageKey", () => {
  it("refuses every traversal and encoding trick", () => {
    expect(TRAVERSAL_KEYS.length).toBeGreaterThanOrEqual(40)
    for (const key of TRAVERSAL_KEYS) {
      const result = validateStorageKey(key)
      expect(Either.isLeft(result), JSON.stringify(key.slice(0, 80))).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left._tag).toBe("InvalidStorageKey")
        expect(result.left.message).toMatch(/^invalid storage key: /)
      }
    }
  })

  it("accepts plain keys unchanged, up to 512 characters, 16 segments and 255 characters a segment", () => {
    expect(VALID_KEYS.map((k) => k.length)).toContain(512)
    for (const key of VALID_KEYS) expect(validateStorageKey(key)).toEqual(Either.right(key))
  })

  it("refuses a non-string at runtime", () => {
    // Deliberately bypasses the type: keys can arrive from untyped JSON.
    expect(Either.isLeft(validateStorageKey(42 as unknown as string))).toBe(true)
  })
})

layer(LocalTest, { timeout: "30 seconds" })("StorageLocalLive on disk", (it) => {
  /** Everything in the container except the root's own subtree, with file contents. */
  const outsideSnapshot = (files: { container: string; root: string }) =>
    walk(files.container)
      .filter((p) => {
        const full = path.join(files.container, p)
        return full !== files.root && !full.startsWith(files.root + path.sep)
      })
      .map((p) => {
        const full = path.join(files.container, p)
        const s = fs.lstatSync(full)
        return s.isFile() ? `${p}:${fs.readFileSync(full, "hex")}` : p
      })
      .sort()

  it.effect(`every traversal key (${TRAVERSAL_KEYS.length}) is refused by put, get, stat, exists and delete`, () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const files = (yield* TestFiles)!
      const outsideBefore = outsideSnapshot(files)
      const rootBefore = walk(files.root).sort()
      for (const key of TRAVERSAL_KEYS) {
        const label = JSON.stringify(key.slice(0, 80))
        const errors = [
          yield* Effect.flip(storage.put(key, text("pwned"))),
          yield* Effect.flip(storage.get(key)),
          yield* Effect.flip(storage.stat(key)),
          yield* Effect.flip(storage.exists(key)),
          yield* Effect.flip(storage.delete(key))
        ]
        for (const error of errors) {
          expect(error._tag, label).toBe("InvalidStorageKey")
          expect(error.message, label).not.toContain(files.container)
        }
      }
      expect(fs.readdirSync(files.sentinel)).toEqual([])
      expect(outsideSnapshot(files)).toEqual(outsideBefore)
      expect(walk(files.root).sort()).toEqual(rootBefore)
    }))

  it.effect("valid keys map to files under the root", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const files = (yield* TestFiles)!
      for (const key of VALID_KEYS) {
        const stored = yield* storage.put(key, text(`body of ${key.length}`))
        expect(stored.size).toBeGreaterThan(0)
      }
      const video = path.join(files.root, "videos", "u1", "abc_123.mp4")
      expect(fs.readFileSync(video, "utf8")).toBe(`body of ${"videos/u1/abc_123.mp4".length}`)
      expect(yield* readText("videos/u1/abc_123.mp4")).toBe(`body of ${"videos/u1/abc_123.mp4".length}`)
      yield* storage.delete("videos/u1/abc_123.mp4")
      expect(fs.existsSync(video)).toBe(false)
      expect(fs.readdirSync(files.sentinel)).toEqual([])
    }))

  it.effect("symlinks inside the root that lead outside are refused, never followed", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const files = (yield* TestFiles)!
      const outsideDir = path.join(files.container, "outside")
      const secret = path.join(outsideDir, "secret.txt")
      fs.mkdirSync(outsideDir, { recursive: true })
      fs.writeFileSync(secret, "TOP SECRET")
      fs.mkdirSync(path.join(files.root, "links"), { recursive: true })
      fs.symlinkSync(outsideDir, path.join(files.root, "links", "dir"))
      fs.symlinkSync(files.sentinel, path.join(files.root, "links", "sentinel"))
      fs.symlinkSync(secret, path.join(files.root, "links", "file"))
      fs.symlinkSync(path.join(outsideDir, "not-yet.txt"), path.join(files.root, "links", "dangling"))
      fs.symlinkSync(files.sentinel, path.join(files.root, "top-level-link"))

      const refused = ["StorageError", "InvalidStorageKey"]
      for (
        const key of [
          "links/dir/secret.txt",
          "links/dir/new.txt",
          "links/dir/deeper/new.txt",
          "links/sentinel/pwned",
          "links/file",
          "links/dangling",
          "top-level-link/pwned"
        ]
      ) {
        const putError = yield* Effect.flip(storage.put(key, text("pwned")))
        expect(refused, key).toContain(putError._tag)
        expect(putError.message, key).not.toContain(files.container)
        expect(refused, key).toContain((yield* Effect.flip(storage.get(key)))._tag)
        expect(refused, key).toContain((yield* Effect.flip(storage.stat(key)))._tag)
        expect(refused, key).toContain((yield* Effect.flip(storage.exists(key)))._tag)
        expect(refused, key).toContain((yield* Effect.flip(storage.delete(key)))._tag)
      }

      expect(fs.readFileSync(secret, "utf8")).toBe("TOP SECRET")
      expect(fs.readdirSync(outsideDir).sort()).toEqual(["secret.txt"])
      expect(fs.readdirSync(files.sentinel)).toEqual([])
      expect(fs.lstatSync(path.join(files.root, "links", "file")).isSymbolicLink()).toBe(true)
      expect(fs.lstatSync(path.join(files.root, "links", "dangling")).isSymbolicLink()).toBe(true)
      expect(tempFiles(files.root)).toEqual([])
    }))

  it.effect("a symlink inside the root that stays inside is still not an object", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const files = (yield* TestFiles)!
      yield* storage.put("inner/real.txt", text("real"))
      fs.symlinkSync(path.join(files.root, "inner", "real.txt"), path.join(files.root, "inner", "alias.txt"))
      expect((yield* Effect.flip(storage.get("inner/alias.txt")))._tag).toBe("StorageError")
      expect((yield* Effect.flip(storage.put("inner/alias.txt", text("x"))))._tag).toBe("StorageError")
      expect(yield* readText("inner/real.txt")).toBe("real")
    }))
})

describe("StorageLocalLive construction", () => {
  const localAt = (dir: string) =>
    StorageLocalLive.pipe(Layer.provide(Layer.effect(AppConfig, appConfigFrom({ STORAGE_DIR: dir }))))

  it.scoped("creates the root and sweeps temp files older than an hour, keeping everything else", () =>
    Effect.gen(function*() {
      const container = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "storage-sweep-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const root = path.join(container, "root")
      fs.mkdirSync(path.join(root, "videos"), { recursive: true })
      const old = path.join(root, "videos", ".tmp-old")
      const fresh = path.join(root, "videos", ".tmp-fresh")
      const object = path.join(root, "videos", "keep.mp4")
      for (const file of [old, fresh, object]) fs.writeFileSync(file, "x")
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000)
      fs.utimesSync(old, twoHoursAgo, twoHoursAgo)
      fs.utimesSync(object, twoHoursAgo, twoHoursAgo)

      const exists = yield* Effect.flatMap(Storage, (s) => s.exists("videos/keep.mp4")).pipe(
        Effect.provide(localAt(root))
      )
      expect(exists).toBe(true)
      expect(fs.existsSync(old)).toBe(false)
      expect(fs.existsSync(fresh)).toBe(true)
      expect(fs.existsSync(object)).toBe(true)

      const missing = path.join(container, "not", "yet", "there")
      yield* Effect.flatMap(Storage, (s) => s.healthCheck).pipe(Effect.provide(localAt(missing)))
      expect(fs.statSync(missing).isDirectory()).toBe(true)
    }))
})
