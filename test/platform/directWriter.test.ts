import { execFileSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openDirectWriter } from "../../src/services/platform/directWriter.js"

/** Whether the filesystem under `dir` takes an O_DIRECT open (EINVAL when it does not). */
const takesODirect = (dir: string) => {
  const probe = path.join(dir, "probe")
  try {
    fs.closeSync(fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_DIRECT))
    return true
  } catch {
    return false
  } finally {
    fs.rmSync(probe, { force: true })
  }
}

/** The open flags of this process's descriptors on `file`, from /proc/self/fdinfo. */
const flagsOn = (file: string) =>
  fs.readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) !== file) return []
      return [parseInt(/flags:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8)]
    } catch {
      return []
    }
  })

/** Pieces of uneven sizes, some larger than a stage, and their concatenation. */
const pieces = (stage: number) => {
  const sizes = [1, 7, 188, 4096, stage - 3, 3 * stage + 11, 0, 65_537, 2 * stage, 12_345]
  const list = sizes.map((size) => crypto.randomBytes(size))
  return { list, all: Buffer.concat(list) }
}

describe("directWriter: a file written front to back, bypassing the page cache where the filesystem allows", () => {
  let dir: string
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-direct-"))
  })
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  const writeAll = (file: string, list: ReadonlyArray<Buffer>, options: Parameters<typeof openDirectWriter>[1]) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const writer = yield* openDirectWriter(file, options)
      const seen: Array<{ direct: boolean; flags: Array<number> }> = []
      for (const piece of list) {
        yield* writer.write(piece)
        seen.push({ direct: writer.direct(), flags: flagsOn(file) })
      }
      expect(writer.appended()).toBe(list.reduce((n, b) => n + b.length, 0))
      yield* writer.finish
      return { seen, directAtEnd: writer.direct() }
    })))

  it("writes the same bytes with O_DIRECT and through the page cache; the direct handle carries O_DIRECT and leaves few pages cached", async () => {
    const stage = 1 << 20
    const { all, list } = pieces(stage)
    const direct = path.join(dir, "direct.bin")
    const buffered = path.join(dir, "buffered.bin")
    const written = await writeAll(direct, list, { stage })
    await writeAll(buffered, list, { stage, direct: false })
    const supported = takesODirect(dir)
    if (supported) {
      // before anything reads them back: what went through the cache is at most the last partial stage
      // (fincore prints the bytes of a file held in the page cache)
      const cached = (file: string) => Number(execFileSync("fincore", ["-b", "-n", "-o", "RES", file]).toString().trim())
      expect(cached(direct)).toBeLessThanOrEqual(stage)
      expect(cached(buffered)).toBeGreaterThan(all.length / 2)
    }
    expect(fs.readFileSync(direct).equals(all)).toBe(true)
    expect(fs.readFileSync(buffered).equals(all)).toBe(true)

    expect(written.seen.every((s) => s.direct === supported)).toBe(true)
    const hasDirect = (flags: Array<number>) => flags.some((f) => (f & fs.constants.O_DIRECT) !== 0)
    expect(written.seen.every((s) => hasDirect(s.flags) === supported)).toBe(true)
    expect(written.directAtEnd).toBe(false) // the last partial stage went through an ordinary handle
    expect(flagsOn(direct)).toEqual([]) // both handles closed
  })

  it("a stage the device cannot take directly (not a whole number of blocks) falls back to the page cache with the same bytes", async () => {
    const stage = 5000
    const { all, list } = pieces(stage)
    const file = path.join(dir, "odd-stage.bin")
    const written = await writeAll(file, list, { stage })
    expect(fs.readFileSync(file).equals(all)).toBe(true)
    expect(written.seen.at(-1)!.direct).toBe(false)
    expect(written.seen.at(-1)!.flags.some((f) => (f & fs.constants.O_DIRECT) !== 0)).toBe(false)
  })

  it("reports each write to the file with the bytes written so far", async () => {
    const stage = 1 << 20
    const { list, all } = pieces(stage)
    const reports: Array<number> = []
    await writeAll(path.join(dir, "progress.bin"), list, { stage, onWrite: (n) => Effect.sync(() => reports.push(n)) })
    expect(reports.length).toBeGreaterThan(5)
    expect(reports.slice(0, -1).every((n) => n % stage === 0)).toBe(true)
    expect(reports.at(-1)).toBe(all.length)
    expect(reports).toEqual([...reports].sort((a, b) => a - b))
  })

  it("closing the scope before finish closes the handles and leaves the partial file to its owner", async () => {
    const file = path.join(dir, "abandoned.bin")
    const scope = Effect.runSync(Scope.make())
    const writer = await Effect.runPromise(Scope.extend(openDirectWriter(file, { stage: 1 << 20 }), scope))
    await Effect.runPromise(writer.write(crypto.randomBytes((3 << 20) + 5)))
    expect(flagsOn(file).length).toBe(takesODirect(dir) ? 2 : 1) // the ordinary handle, and the O_DIRECT one
    await Effect.runPromise(Scope.close(scope, Exit.void))
    expect(flagsOn(file)).toEqual([])
    expect(fs.statSync(file).size).toBe(3 << 20) // the whole stages written, the staged rest dropped
  })

  it("exclusive: creates the file or fails, never writing through an existing file or a symlink planted at the path", async () => {
    const fresh = path.join(dir, "exclusive.bin")
    const bytes = crypto.randomBytes((2 << 20) + 77)
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const writer = yield* openDirectWriter(fresh, { exclusive: true, stage: 1 << 20 })
      yield* writer.write(bytes)
      yield* writer.finish
      yield* writer.datasync
    })))
    expect(fs.readFileSync(fresh).equals(bytes)).toBe(true)
    const victim = path.join(dir, "victim.bin")
    fs.writeFileSync(victim, "keep me")
    const planted = path.join(dir, "planted.bin")
    fs.symlinkSync(victim, planted)
    for (const target of [fresh, planted]) {
      const exit = await Effect.runPromiseExit(Effect.scoped(openDirectWriter(target, { exclusive: true })))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("EEXIST")
    }
    expect(fs.readFileSync(victim, "utf8")).toBe("keep me")
    expect(fs.readFileSync(fresh).equals(bytes)).toBe(true)
  })

  it("a file it cannot create fails with the cause", async () => {
    const exit = await Effect.runPromiseExit(Effect.scoped(openDirectWriter(path.join(dir, "missing", "x.bin"))))
    expect(Exit.isFailure(exit) && String(exit.cause)).toContain("ENOENT")
  })
})
