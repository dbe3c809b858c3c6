import * as fs from "node:fs/promises"
import { Effect } from "effect"
import { BoxParser, createFile, DataStream, Endianness, MP4BoxBuffer } from "mp4box"
import { JobPermanent } from "../../services/jobs/JobError.js"
import { openDirectWriter, type DirectWriterOptions } from "../../services/platform/directWriter.js"

/**
 * Repeats one block (an mp4 exactly one audio period long: the video unit and the periodic AAC chunk, muxed by
 * ffmpeg with stream copy) up to a target duration, without pushing every packet through ffmpeg:
 *
 *   ftyp | mdat: block media x R + a prefix of it (the tail) | moov: the block's sample tables expanded
 *
 * The boxes are parsed and serialized with mp4box (gpac's mp4box.js); the repeating (which tables grow how,
 * where the tail is cut, the offsets) is ours, pure in `planRepeat` so it is unit-tested without files, and
 * the bytes are streamed by `writeRepeat`. Anything in the block this does not understand is refused
 * (`RepeatRefused`), never written as a broken file.
 */

// mp4box does not export its box classes by name: their types are reached through ISOFile's.
type moovBox = ReturnType<typeof createFile>["moov"]
type trakBox = moovBox["traks"][number]
type stblBox = trakBox["mdia"]["minf"]["stbl"]

export class RepeatRefused extends Error {
  override readonly name = "RepeatRefused"
}

const refuse = (reason: string): never => {
  throw new RepeatRefused(reason)
}

/** A top-level box: where it starts, its header length and whole size. */
export interface TopBox {
  readonly type: string
  readonly offset: number
  readonly header: number
  readonly size: number
}

const TOP_LEVEL_OK = new Set(["ftyp", "free", "skip", "wide", "mdat", "moov"])
const TRAK_OK = new Set(["tkhd", "edts", "mdia", "udta"])
const MDIA_OK = new Set(["mdhd", "hdlr", "minf"])
const MINF_OK = new Set(["vmhd", "smhd", "dinf", "stbl"])
const STBL_OK = new Set(["stsd", "stts", "ctts", "stss", "stsz", "stsc", "stco", "co64", "sgpd", "sbgp"])
const MOOV_OK = new Set(["mvhd", "trak", "udta", "iods"])

/** Reads the top-level box headers (`read(offset, length)` returns the file's bytes there). */
export const topLevelBoxes = async (
  fileSize: number,
  read: (offset: number, length: number) => Promise<Uint8Array>
): Promise<Array<TopBox>> => {
  const boxes: Array<TopBox> = []
  let offset = 0
  while (offset < fileSize) {
    if (fileSize - offset < 8) refuse(`the block has ${fileSize - offset} stray bytes at its end`)
    const head = Buffer.from(await read(offset, Math.min(16, fileSize - offset)))
    const type = head.toString("latin1", 4, 8)
    let size = head.readUInt32BE(0)
    let header = 8
    if (size === 1) {
      size = Number(head.readBigUInt64BE(8))
      header = 16
    } else if (size === 0) size = fileSize - offset
    if (size < header || offset + size > fileSize) refuse(`the block's ${type} box has a bad size`)
    if (!TOP_LEVEL_OK.has(type)) refuse(`the block has a top-level '${type}' box (fragmented or unexpected layout)`)
    boxes.push({ type, offset, header, size })
    offset += size
  }
  return boxes
}

export interface RepeatOptions {
  /** Chunk offsets above this are written with co64 (the default is the 32-bit limit; tests lower it). */
  readonly co64Above?: number
  /** An mdat whose box size is above this gets a 64-bit `largesize` header (default: the 32-bit limit). */
  readonly largeMdatAbove?: number
}

/** What one track of the output holds, for tests and logs. */
export interface TrackSummary {
  readonly handler: string
  readonly timescale: number
  readonly samples: number
  /** In the track's timescale. */
  readonly duration: number
  readonly co64: boolean
}

export interface RepeatPlan {
  /** ftyp and the mdat header, written first. */
  readonly head: Uint8Array
  /** The block's media bytes: where they are in block.mp4. */
  readonly payloadOffset: number
  readonly payloadLength: number
  /** Whole copies of the payload, then the first `tailLength` bytes of it. */
  readonly repeats: number
  readonly tailLength: number
  readonly moov: Uint8Array
  readonly totalSize: number
  readonly seconds: number
  readonly tracks: ReadonlyArray<TrackSummary>
}

interface Chunk {
  /** Relative to the payload's first byte. */
  readonly offset: number
  readonly samples: number
  readonly description: number
}

/** Run-length tables (stts, ctts, sbgp) repeated `repeats` times plus the first `tail` samples, adjacent equal runs merged. */
const expandRuns = (
  counts: ReadonlyArray<number>,
  values: ReadonlyArray<number>,
  repeats: number,
  tail: number
): { counts: Array<number>; values: Array<number> } => {
  const out = { counts: [] as Array<number>, values: [] as Array<number> }
  const push = (count: number, value: number) => {
    if (count === 0) return
    const last = out.values.length - 1
    if (last >= 0 && out.values[last] === value) out.counts[last]! += count
    else {
      out.counts.push(count)
      out.values.push(value)
    }
  }
  for (let r = 0; r < repeats; r++) counts.forEach((count, i) => push(count, values[i]!))
  let left = tail
  for (let i = 0; i < counts.length && left > 0; i++) {
    push(Math.min(left, counts[i]!), values[i]!)
    left -= counts[i]!
  }
  return out
}

const handlerOf = (trak: trakBox) => trak.mdia?.hdlr?.handler ?? "?"

const checkChildren = (box: { type: string; boxes?: Array<{ type: string }> }, allowed: Set<string>) => {
  for (const child of box.boxes ?? []) {
    if (!allowed.has(child.type)) refuse(`the block's ${box.type} holds a '${child.type}' box, which the repeat does not handle`)
  }
}

/** Per-sample durations of a track's block (stts expanded). */
const sampleDurations = (stbl: stblBox): Array<number> => {
  const durations: Array<number> = []
  stbl.stts.sample_counts.forEach((count, i) => {
    for (let k = 0; k < count; k++) durations.push(stbl.stts.sample_deltas[i]!)
  })
  return durations
}

/** Samples of a track to keep in the tail: those whose middle lies before `until` (seconds from the tail's start). */
const tailSamples = (durations: ReadonlyArray<number>, timescale: number, until: number) => {
  let t = 0
  let k = 0
  while (k < durations.length && (t + durations[k]! / 2) / timescale < until) t += durations[k++]!
  return { samples: k, seconds: t / timescale }
}

/**
 * Plans the output: `ftyp` and `moov` are the block's own boxes (parsed from their bytes); `payload` is where
 * the block's single mdat payload lies in block.mp4. Throws RepeatRefused for any layout it does not handle.
 */
export const planRepeat = (
  block: { readonly ftyp: Uint8Array; readonly moov: Uint8Array; readonly payloadOffset: number; readonly payloadLength: number },
  targetSeconds: number,
  options: RepeatOptions = {}
): RepeatPlan => {
  const co64Above = options.co64Above ?? 0xffff_ffff
  const largeMdatAbove = options.largeMdatAbove ?? 0xffff_ffff
  const bytes = new Uint8Array(block.ftyp.length + block.moov.length)
  bytes.set(block.ftyp, 0)
  bytes.set(block.moov, block.ftyp.length)
  const file = createFile()
  file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.buffer, 0))
  file.flush()
  const moov: moovBox | undefined = file.moov
  if (moov === undefined || moov.mvhd === undefined) return refuse("the block has no readable moov")
  checkChildren(moov, MOOV_OK)
  const traks = moov.traks ?? []
  const videos = traks.filter((t) => handlerOf(t) === "vide")
  if (videos.length !== 1) return refuse(`the block has ${videos.length} video tracks (one expected)`)
  if (traks.some((t) => !["vide", "soun"].includes(handlerOf(t)))) return refuse("the block has a track that is neither video nor audio")

  // The block must be one period for every track: equal durations, so the repeats line up.
  const period = (trak: trakBox) => {
    const stbl = trak.mdia.minf.stbl
    return { total: sampleDurations(stbl).reduce((a, b) => a + b, 0), timescale: trak.mdia.mdhd.timescale }
  }
  const video = videos[0]!
  const vp = period(video)
  if (vp.total <= 0) return refuse("the block's video is empty")
  for (const trak of traks) {
    const p = period(trak)
    if (p.total * vp.timescale !== vp.total * p.timescale) {
      return refuse(`the block's ${handlerOf(trak)} track lasts ${p.total}/${p.timescale} s, not the video's ${vp.total}/${vp.timescale} s`)
    }
  }
  const periodSeconds = vp.total / vp.timescale
  let repeats = Math.floor(targetSeconds / periodSeconds + 1e-9)
  // the tail: the video cut at the frame nearest the target, every other track at its sample nearest that cut
  let videoTail = tailSamples(sampleDurations(video.mdia.minf.stbl), vp.timescale, targetSeconds - repeats * periodSeconds)
  if (repeats === 0 && videoTail.samples === 0) videoTail = { samples: 1, seconds: video.mdia.minf.stbl.stts.sample_deltas[0]! / vp.timescale }
  if (videoTail.samples === sampleDurations(video.mdia.minf.stbl).length) {
    repeats += 1
    videoTail = { samples: 0, seconds: 0 }
  }

  const ftypLength = block.ftyp.length
  interface Built { trak: trakBox; stbl: stblBox; chunks: Array<Chunk>; tail: number; n: number; durations: Array<number> }
  const built: Array<Built> = traks.map((trak) => {
    checkChildren(trak, TRAK_OK)
    checkChildren(trak.mdia, MDIA_OK)
    checkChildren(trak.mdia.minf, MINF_OK)
    const stbl = trak.mdia.minf.stbl
    checkChildren(stbl, STBL_OK)
    const count = (type: string) => (stbl.boxes ?? []).filter((b) => b.type === type).length
    if (count("stsd") !== 1 || count("stts") !== 1 || count("stsz") !== 1 || count("stsc") !== 1 || count("stss") > 1 || count("ctts") > 1) {
      return refuse(`the block's ${handlerOf(trak)} sample table is incomplete or repeated`)
    }
    const offsets = stbl.stco?.chunk_offsets ?? stbl.co64?.chunk_offsets
    if (offsets === undefined || count("stco") + count("co64") !== 1) {
      return refuse(`the block's ${handlerOf(trak)} track has no single chunk offset table`)
    }
    const durations = sampleDurations(stbl)
    const n = durations.length
    if (stbl.stsz.sample_size !== 0) {
      // one size for all: made explicit (mp4box writes the count from the list's length)
      stbl.stsz.sample_sizes = Array.from({ length: stbl.stsz.sample_count }, () => stbl.stsz.sample_size)
      stbl.stsz.sample_size = 0
    }
    const sizes = stbl.stsz.sample_sizes
    if (sizes.length !== n) return refuse(`the block's ${handlerOf(trak)} stsz and stts disagree`)
    // chunks from stsc, each checked to lie within the payload
    const chunks: Array<Chunk> = []
    const stsc = stbl.stsc
    let sample = 0
    for (let c = 0; c < offsets.length; c++) {
      let e = 0
      while (e + 1 < stsc.first_chunk.length && stsc.first_chunk[e + 1]! <= c + 1) e++
      const count = stsc.samples_per_chunk[e]!
      const relative = offsets[c]! - block.payloadOffset
      let length = 0
      for (let s = sample; s < sample + count; s++) length += sizes[s] ?? 0
      if (relative < 0 || relative + length > block.payloadLength) return refuse(`a ${handlerOf(trak)} chunk lies outside the block's mdat`)
      chunks.push({ offset: relative, samples: count, description: stsc.sample_description_index[e]! })
      sample += count
    }
    if (sample !== n) return refuse(`the block's ${handlerOf(trak)} stsc covers ${sample} samples, not ${n}`)
    const tail = trak === video
      ? videoTail.samples
      : tailSamples(durations, trak.mdia.mdhd.timescale, videoTail.seconds).samples
    return { trak, stbl, chunks, tail, n, durations }
  })

  // The tail: the payload's prefix that holds every kept sample.
  let tailLength = 0
  for (const { stbl, chunks, tail } of built) {
    const sizes = stbl.stsz.sample_sizes
    let sample = 0
    for (const chunk of chunks) {
      if (sample >= tail) break
      let end = chunk.offset
      for (let s = sample; s < Math.min(tail, sample + chunk.samples); s++) end += sizes[s]!
      tailLength = Math.max(tailLength, end)
      sample += chunk.samples
    }
  }
  const dataLength = repeats * block.payloadLength + tailLength
  const mdatHeader = 8 + dataLength > largeMdatAbove ? 16 : 8
  const payloadStart = ftypLength + mdatHeader
  const movieTimescale = moov.mvhd.timescale
  const tracks: Array<TrackSummary> = []
  let movieDuration = 0

  for (const { trak, stbl, chunks, tail, n, durations } of built) {
    const handler = handlerOf(trak)
    const total = repeats * n + tail
    // stts, ctts, sbgp: run-length tables repeated
    const stts = expandRuns(stbl.stts.sample_counts, stbl.stts.sample_deltas, repeats, tail)
    stbl.stts.sample_counts = stts.counts
    stbl.stts.sample_deltas = stts.values
    if (stbl.ctts !== undefined) {
      const ctts = expandRuns(stbl.ctts.sample_counts, stbl.ctts.sample_offsets, repeats, tail)
      stbl.ctts.sample_counts = ctts.counts
      stbl.ctts.sample_offsets = ctts.values
    }
    for (const sbgp of stbl.sbgps ?? []) {
      const runs = expandRuns(
        sbgp.entries.map((e) => e.sample_count),
        sbgp.entries.map((e) => e.group_description_index),
        repeats,
        tail
      )
      sbgp.entries = runs.counts.map((count, i) => ({ sample_count: count, group_description_index: runs.values[i]! }))
    }
    // stss: sync samples of every copy (1-based)
    if (stbl.stss !== undefined) {
      const sync = stbl.stss.sample_numbers
      const out: Array<number> = []
      for (let r = 0; r < repeats; r++) for (const s of sync) out.push(r * n + s)
      for (const s of sync) if (s <= tail) out.push(repeats * n + s)
      stbl.stss.sample_numbers = out
    }
    // stsz
    const sizes = stbl.stsz.sample_sizes
    const out = new Array<number>(total)
    for (let r = 0; r < repeats; r++) for (let s = 0; s < n; s++) out[r * n + s] = sizes[s]!
    for (let s = 0; s < tail; s++) out[repeats * n + s] = sizes[s]!
    stbl.stsz.sample_sizes = out
    stbl.stsz.sample_count = total
    // chunks: every copy's at its shifted offset, the tail's last one cut to the kept samples
    const offsets: Array<number> = []
    const firstChunk: Array<number> = []
    const perChunk: Array<number> = []
    const description: Array<number> = []
    const addChunk = (offset: number, samples: number, desc: number) => {
      offsets.push(payloadStart + offset)
      const last = perChunk.length - 1
      if (last < 0 || perChunk[last] !== samples || description[last] !== desc) {
        firstChunk.push(offsets.length)
        perChunk.push(samples)
        description.push(desc)
      }
    }
    for (let r = 0; r < repeats; r++) for (const chunk of chunks) addChunk(r * block.payloadLength + chunk.offset, chunk.samples, chunk.description)
    let left = tail
    for (const chunk of chunks) {
      if (left <= 0) break
      addChunk(repeats * block.payloadLength + chunk.offset, Math.min(left, chunk.samples), chunk.description)
      left -= chunk.samples
    }
    stbl.stsc.first_chunk = firstChunk
    stbl.stsc.samples_per_chunk = perChunk
    stbl.stsc.sample_description_index = description
    const co64 = offsets.some((o) => o > co64Above) || stbl.stco === undefined
    const old = stbl.stco ?? stbl.co64
    const children = stbl.boxes ?? []
    const at = children.indexOf(old)
    if (co64) {
      const box = stbl.co64 ?? new BoxParser.box.co64()
      box.chunk_offsets = offsets
      children[at] = box
    } else {
      stbl.stco!.chunk_offsets = offsets
    }

    // durations: mdhd in the track's timescale, the edit list and tkhd in the movie's
    const duration = repeats * durations.reduce((a, b) => a + b, 0) + durations.slice(0, tail).reduce((a, b) => a + b, 0)
    const timescale = trak.mdia.mdhd.timescale
    trak.mdia.mdhd.duration = duration
    let trackDuration = Math.round((duration * movieTimescale) / timescale)
    if (trak.edts !== undefined) {
      const elst = trak.edts.elst
      checkChildren(trak.edts, new Set(["elst"]))
      if (elst === undefined || elst.entries.length === 0) return refuse("the block has an empty edit list")
      const last = elst.entries[elst.entries.length - 1]!
      const empties = elst.entries.slice(0, -1)
      if (empties.some((e) => e.media_time !== -1) || last.media_time < 0 || last.media_rate_integer !== 1 || last.media_rate_fraction !== 0) {
        return refuse(`the block's ${handler} edit list is not one plain edit (after empty ones)`)
      }
      last.segment_duration = Math.max(0, Math.round(((duration - last.media_time) * movieTimescale) / timescale))
      trackDuration = elst.entries.reduce((sum, e) => sum + e.segment_duration, 0)
    }
    trak.tkhd.duration = trackDuration
    movieDuration = Math.max(movieDuration, trackDuration)
    tracks.push({ handler, timescale, samples: total, duration, co64 })
  }
  moov.mvhd.duration = movieDuration

  const stream = new DataStream(undefined, 0, Endianness.BIG_ENDIAN)
  moov.write(stream)
  const moovBytes = new Uint8Array(stream.buffer, 0, stream.getPosition())
  const head = Buffer.alloc(ftypLength + mdatHeader)
  head.set(block.ftyp, 0)
  if (mdatHeader === 16) {
    head.writeUInt32BE(1, ftypLength)
    head.write("mdat", ftypLength + 4, "latin1")
    head.writeBigUInt64BE(BigInt(16 + dataLength), ftypLength + 8)
  } else {
    head.writeUInt32BE(8 + dataLength, ftypLength)
    head.write("mdat", ftypLength + 4, "latin1")
  }
  return {
    head,
    payloadOffset: block.payloadOffset,
    payloadLength: block.payloadLength,
    repeats,
    tailLength,
    moov: moovBytes,
    totalSize: head.length + dataLength + moovBytes.length,
    seconds: movieDuration / movieTimescale,
    tracks
  }
}

/** Reads block.mp4's ftyp and moov (small) and locates its single mdat payload. */
export const readBlock = async (blockPath: string) => {
  const handle = await fs.open(blockPath, "r")
  try {
    const { size } = await handle.stat()
    const read = async (offset: number, length: number) => {
      const buffer = Buffer.alloc(length)
      const { bytesRead } = await handle.read(buffer, 0, length, offset)
      return buffer.subarray(0, bytesRead)
    }
    const boxes = await topLevelBoxes(size, read)
    const one = (type: string) => {
      const found = boxes.filter((b) => b.type === type)
      return found.length === 1 ? found[0]! : refuse(`the block has ${found.length} '${type}' boxes (one expected)`)
    }
    const ftyp = one("ftyp")
    const moov = one("moov")
    const mdat = one("mdat")
    return {
      ftyp: await read(ftyp.offset, ftyp.size),
      moov: await read(moov.offset, moov.size),
      payloadOffset: mdat.offset + mdat.header,
      payloadLength: mdat.size - mdat.header
    }
  } finally {
    await handle.close()
  }
}

/** A payload larger than this is copied from the block file in pieces of this size instead of held in memory. */
const READ_PIECE = 8 << 20
/** A payload up to this size is held in memory (it is one audio period of the unit). */
const IN_MEMORY = 64 << 20

export interface WriteRepeatOptions extends RepeatOptions, Pick<DirectWriterOptions, "direct" | "stage"> {
  /** A payload up to this many bytes is held in memory, a larger one is copied from the block file (tests lower it). */
  readonly inMemoryUpTo?: number
  /** Called with the fraction (0-1) of the output written, at most once per write to the file. */
  readonly progress?: (fraction: number) => Effect.Effect<void>
}

const refused = (what: string) => (cause: unknown) =>
  cause instanceof RepeatRefused
    ? new JobPermanent({ reason: `the loop block cannot be repeated: ${cause.message}`, cause })
    : new JobPermanent({ reason: `the loop block could not be ${what}`, cause })

const io = (what: string) => (cause: unknown) => new JobPermanent({ reason: `the looped video could not be ${what}`, cause })

/**
 * Writes the repeated block to `outputPath` through a `DirectWriter` (directWriter.ts: large writes that bypass the
 * page cache where the filesystem allows), interruptible between writes; both file handles are closed when it
 * ends, fails or is interrupted (a write in flight completes first: `FileHandle.close` waits for it).
 */
export const writeRepeat = (blockPath: string, outputPath: string, targetSeconds: number, options: WriteRepeatOptions = {}) =>
  Effect.gen(function*() {
    const block = yield* Effect.tryPromise({ try: () => readBlock(blockPath), catch: refused("read") })
    const plan = yield* Effect.try({ try: () => planRepeat(block, targetSeconds, options), catch: refused("planned") })
    yield* Effect.scoped(
      Effect.gen(function*() {
        const input = yield* Effect.acquireRelease(
          Effect.tryPromise({ try: () => fs.open(blockPath, "r"), catch: io("read") }),
          (handle) => Effect.promise(() => handle.close().catch(() => undefined))
        )
        const output = yield* openDirectWriter(outputPath, {
          ...(options.direct === undefined ? {} : { direct: options.direct }),
          ...(options.stage === undefined ? {} : { stage: options.stage }),
          onWrite: (written) => options.progress?.(written / plan.totalSize) ?? Effect.void
        }).pipe(Effect.mapError(io("written")))
        const write = (bytes: Uint8Array) => output.write(bytes).pipe(Effect.mapError(io("written")))
        const readAt = (offset: number, length: number) =>
          Effect.tryPromise({
            try: async () => {
              const buffer = Buffer.allocUnsafe(length)
              const { bytesRead } = await input.read(buffer, 0, length, offset)
              if (bytesRead !== length) throw new Error(`short read of the block at ${offset}`)
              return buffer
            },
            catch: io("read")
          })
        yield* write(plan.head)
        const length = plan.payloadLength
        if (length > 0 && length <= (options.inMemoryUpTo ?? IN_MEMORY)) {
          const payload = yield* readAt(plan.payloadOffset, length)
          for (let r = 0; r < plan.repeats; r++) yield* write(payload)
          yield* write(payload.subarray(0, plan.tailLength))
        } else {
          const copy = (bytes: number) =>
            Effect.gen(function*() {
              for (let at = 0; at < bytes; at += READ_PIECE) yield* write(yield* readAt(plan.payloadOffset + at, Math.min(READ_PIECE, bytes - at)))
            })
          for (let r = 0; r < plan.repeats; r++) yield* copy(length)
          yield* copy(plan.tailLength)
        }
        yield* write(plan.moov)
        yield* output.finish.pipe(Effect.mapError(io("written")))
      })
    )
    return plan
  })
