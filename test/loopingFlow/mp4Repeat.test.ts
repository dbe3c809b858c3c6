import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Fiber } from "effect"
import { createFile, MP4BoxBuffer } from "mp4box"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { planRepeat, readBlock, RepeatRefused, writeRepeat } from "../../src/workers/loopingFlow/mp4Repeat.js"
import { type Media, media } from "./media.js"

/** Every sample of a parsed mp4 track: its bytes' offset and size, its duration and whether it is a sync sample. */
const samplesOf = (file: string) => {
  const bytes = fs.readFileSync(file)
  const iso = createFile()
  iso.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), 0))
  iso.flush()
  return {
    bytes,
    iso,
    tracks: iso.moov.traks.map((trak) => {
      const stbl = trak.mdia.minf.stbl
      const offsets = (stbl.stco ?? stbl.co64).chunk_offsets
      const sizes = stbl.stsz.sample_sizes
      const out: Array<{ offset: number; size: number }> = []
      let sample = 0
      offsets.forEach((offset, c) => {
        let e = 0
        while (e + 1 < stbl.stsc.first_chunk.length && stbl.stsc.first_chunk[e + 1]! <= c + 1) e++
        let at = offset
        for (let k = 0; k < stbl.stsc.samples_per_chunk[e]!; k++) {
          out.push({ offset: at, size: sizes[sample]! })
          at += sizes[sample++]!
        }
      })
      return {
        handler: trak.mdia.hdlr.handler,
        stbl,
        samples: out,
        co64: stbl.co64 !== undefined,
        sync: stbl.stss?.sample_numbers,
        mdhd: trak.mdia.mdhd,
        tkhd: trak.tkhd,
        elst: trak.edts?.elst?.entries
      }
    })
  }
}

describe("mp4Repeat: a block repeated to a target (real ffmpeg for the block and the checks)", () => {
  let m: Media
  let work: string
  let block: string
  /** The block's period: 64 frames at 25 fps = 120 AAC packets of 1024 samples at 48 kHz. */
  const PERIOD = 2.56

  beforeAll(async () => {
    m = await media()
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lumiku-mp4repeat-"))
    const at = (name: string) => path.join(work, name)
    // keyframes every 16 frames, so the block has several sync samples
    m.ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-frames:v", "64", "-c:v", "libx264", "-preset", "veryfast",
      "-bf", "0", "-g", "16", "-pix_fmt", "yuv420p", at("unit.mp4"))
    m.ffmpeg("-f", "lavfi", "-i", "sine=frequency=250:sample_rate=48000", "-c:a", "aac", "-b:a", "128k", "-frames:a", "120", "-f", "adts", at("chunk.aac"))
    block = at("block.mp4")
    m.ffmpeg("-i", at("unit.mp4"), "-f", "aac", "-i", at("chunk.aac"), "-map", "0:v", "-map", "1:a", "-c", "copy", block)
  })
  afterAll(() => {
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  })

  const write = (target: number, name: string, options: Parameters<typeof writeRepeat>[3] = {}) =>
    Effect.runPromise(writeRepeat(block, path.join(work, name), target, options)).then((plan) => ({ plan, file: path.join(work, name) }))

  it("expands the tables: sample counts, durations, stss indices, and every sample's offset points at its bytes in the block", async () => {
    const target = 3 * PERIOD + 1.0 // three copies and a one-second tail: 25 frames, 47 AAC packets
    const { plan, file } = await write(target, "tables.mp4")
    expect(plan.repeats).toBe(3)
    const input = samplesOf(block)
    const output = samplesOf(file)
    const [vIn, aIn] = [input.tracks.find((t) => t.handler === "vide")!, input.tracks.find((t) => t.handler === "soun")!]
    const [vOut, aOut] = [output.tracks.find((t) => t.handler === "vide")!, output.tracks.find((t) => t.handler === "soun")!]
    expect(vIn.samples).toHaveLength(64)
    expect(aIn.samples).toHaveLength(120)
    expect(vOut.samples).toHaveLength(3 * 64 + 25)
    expect(aOut.samples).toHaveLength(3 * 120 + 47) // 25 frames = 1.0 s = 46.9 packets: the nearest packet
    // durations: 512 per frame at 12800, 1024 per packet at 48000; headers agree
    expect(vOut.stbl.stts.sample_counts).toEqual([217])
    expect(vOut.mdhd.duration).toBe(217 * vIn.stbl.stts.sample_deltas[0]!)
    expect(aOut.mdhd.duration).toBe(407 * 1024)
    expect(vOut.tkhd.duration).toBe(Math.round((vOut.mdhd.duration / vOut.mdhd.timescale) * output.iso.moov.mvhd.timescale))
    expect(Math.abs(output.iso.moov.mvhd.duration / output.iso.moov.mvhd.timescale - target)).toBeLessThan(0.05)
    if (vOut.elst !== undefined) expect(vOut.elst.reduce((s, e) => s + e.segment_duration, 0)).toBe(vOut.tkhd.duration)
    // stss: the block's sync samples (1, 17, 33, 49) in every copy, and those of the tail
    expect(vIn.sync).toEqual([1, 17, 33, 49])
    expect(vOut.sync).toEqual([1, 17, 33, 49, 65, 81, 97, 113, 129, 145, 161, 177, 193, 209])
    // every sample of the output is the block's sample (i mod n), byte for byte
    for (const [tin, tout] of [[vIn, vOut], [aIn, aOut]] as const) {
      tout.samples.forEach((s, i) => {
        const b = tin.samples[i % tin.samples.length]!
        expect(s.size).toBe(b.size)
        expect(output.bytes.subarray(s.offset, s.offset + s.size).equals(input.bytes.subarray(b.offset, b.offset + b.size))).toBe(true)
      })
    }
    expect(vOut.co64).toBe(false)
    expect(fs.statSync(file).size).toBe(plan.totalSize)
  })

  it("uses co64 when an offset passes the threshold (lowered here) and a 64-bit mdat header when forced; both decode the same", async () => {
    const plain = await write(20, "plain.mp4")
    const wide = await write(20, "wide.mp4", { co64Above: 100_000, largeMdatAbove: 1000 })
    const tracks = samplesOf(wide.file).tracks
    expect(tracks.every((t) => t.co64)).toBe(true)
    expect(samplesOf(plain.file).tracks.some((t) => t.co64)).toBe(false)
    const bytes = fs.readFileSync(wide.file)
    const ftypSize = bytes.readUInt32BE(0)
    expect(bytes.readUInt32BE(ftypSize)).toBe(1) // size 1: largesize follows
    expect(bytes.toString("latin1", ftypSize + 4, ftypSize + 8)).toBe("mdat")
    expect(m.ffmpegLog("-v", "error", "-i", wide.file, "-f", "null", "-").trim()).toBe("")
    const frames = (file: string) => m.ffmpeg("-i", file, "-f", "framemd5", "-").toString().split("\n").filter((l) => !l.startsWith("#"))
    expect(frames(wide.file)).toEqual(frames(plain.file))
  })

  it("a payload too large to hold in memory is copied from the block file: the same bytes", async () => {
    const held = await write(3 * PERIOD + 1.0, "held.mp4")
    const copied = await write(3 * PERIOD + 1.0, "copied.mp4", { inMemoryUpTo: 0 })
    expect(fs.readFileSync(copied.file).equals(fs.readFileSync(held.file))).toBe(true)
  })

  it("the output decodes without a message, and packet timestamps are monotonic and evenly spaced across block boundaries", async () => {
    const { file } = await write(30, "seamless.mp4")
    expect(m.ffmpegLog("-v", "error", "-i", file, "-f", "null", "-").trim()).toBe("")
    const info = m.probe(file)
    expect(Math.abs(Number(info.format.duration) - 30)).toBeLessThan(0.1)
    for (const stream of ["v:0", "a:0"]) {
      const pts = packetPts(m, file, stream)
      expect(pts.length).toBeGreaterThan(11 * 64) // more than 11 blocks of frames (or packets)
      const steps = new Set(pts.slice(1).map((p, i) => p - pts[i]!))
      expect([...steps]).toHaveLength(1) // one step everywhere, the joins included, in decode order
      expect([...steps][0]).toBeGreaterThan(0)
    }
  })

  it("a 2-hour target is written in seconds (bound: 10 s), within 0.1 s of the target, and decodes at its end", async () => {
    const start = performance.now()
    const { plan, file } = await write(7200, "two-hours.mp4")
    const seconds = (performance.now() - start) / 1000
    expect(seconds).toBeLessThan(10)
    expect(plan.repeats).toBe(Math.floor(7200 / PERIOD))
    const info = m.probe(file)
    expect(Math.abs(Number(info.format.duration) - 7200)).toBeLessThan(0.1)
    for (const s of info.streams) expect(Math.abs(Number(s["duration"]) - 7200)).toBeLessThan(0.1)
    expect(m.ffmpegLog("-v", "error", "-ss", "7195", "-i", file, "-f", "null", "-").trim()).toBe("")
    fs.rmSync(file)
  }, 60_000)

  it("interrupted mid-write, it stops and closes the output's file handle", async () => {
    const output = path.join(work, "interrupted.mp4")
    // each write reports progress, made slow here so the interruption surely lands mid-file
    const fiber = Effect.runFork(writeRepeat(block, output, 8 * 3600, { progress: () => Effect.sleep("20 millis") }))
    // the tables of 8 hours are planned first; interrupted once the media is being written
    for (let i = 0; i < 500 && !(fs.existsSync(output) && fs.statSync(output).size > 0); i++) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(fs.statSync(output).size).toBeGreaterThan(0)
    const started = performance.now()
    const exit = await Effect.runPromise(Fiber.interrupt(fiber))
    expect(performance.now() - started).toBeLessThan(1000)
    expect(Exit.isInterrupted(exit)).toBe(true)
    const open = fs.readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`) === output
      } catch {
        return false
      }
    })
    expect(open).toEqual([])
    const size = fs.statSync(output).size
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(fs.statSync(output).size).toBe(size) // nothing more is written
    expect(size).toBeLessThan(100 << 20) // stopped well before the 8 hours' ~300 MB
  })

  it("refuses a block it does not understand instead of writing a broken file", async () => {
    const parts = await readBlock(block)
    // tracks of unequal length: the audio one packet short
    const short = path.join(work, "short.mp4")
    m.ffmpeg("-i", path.join(work, "unit.mp4"), "-f", "aac", "-i", path.join(work, "chunk.aac"), "-map", "0:v", "-map", "1:a", "-c", "copy",
      "-frames:a", "119", short)
    expect(() => planRepeat(readBlockSync(short), 30)).toThrow(RepeatRefused)
    // a top-level box it does not know (a fragment)
    const odd = path.join(work, "odd.mp4")
    fs.writeFileSync(odd, Buffer.concat([fs.readFileSync(block), Buffer.from([0, 0, 0, 8, 0x6d, 0x6f, 0x6f, 0x66])]))
    const exit = await Effect.runPromiseExit(writeRepeat(odd, path.join(work, "odd-out.mp4"), 30))
    expect(Exit.isFailure(exit) && String(exit.cause)).toContain("top-level 'moof'")
    expect(fs.existsSync(path.join(work, "odd-out.mp4"))).toBe(false)
    expect(parts.payloadLength).toBeGreaterThan(0)
  })
})

const packetPts = (m: Media, file: string, stream: string) =>
  m.ffmpeg("-i", file, "-map", `0:${stream}`, "-c", "copy", "-f", "framecrc", "-").toString().split("\n")
    .filter((l) => l.length > 0 && !l.startsWith("#")).map((l) => Number(l.split(",")[1]))

const readBlockSync = (file: string) => {
  const bytes = fs.readFileSync(file)
  const boxes: Array<{ type: string; offset: number; size: number }> = []
  for (let at = 0; at < bytes.length;) {
    const size = bytes.readUInt32BE(at)
    boxes.push({ type: bytes.toString("latin1", at + 4, at + 8), offset: at, size })
    at += size
  }
  const box = (type: string) => boxes.find((b) => b.type === type)!
  return {
    ftyp: bytes.subarray(box("ftyp").offset, box("ftyp").offset + box("ftyp").size),
    moov: bytes.subarray(box("moov").offset, box("moov").offset + box("moov").size),
    payloadOffset: box("mdat").offset + 8,
    payloadLength: box("mdat").size - 8
  }
}
