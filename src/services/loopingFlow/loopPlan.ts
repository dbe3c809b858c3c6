/**
 * The arithmetic of a seamless loop, kept pure so it is unit-tested without ffmpeg.
 *
 * One loop unit is rendered (video and PCM audio of exactly the same length), then repeated by stream
 * copy. The video unit is a whole number of frames at a frame rate that divides 48 kHz, so a frame is a
 * whole number of audio samples. AAC codes audio in frames of 1024 samples that overlap their
 * neighbours, so its periodic chunk spans `unitsPerAudioPeriod` units: the smallest whole number of
 * units that is also a whole number of AAC frames. That chunk is cut from the middle of a continuous
 * encode of three periods (see `periodicPackets`), so repeating it decodes as one continuous signal.
 */

export const SAMPLE_RATE = 48_000
export const AAC_FRAME = 1024

/** Frame rates a unit may have: whole numbers that divide SAMPLE_RATE (a frame is whole samples). */
const RATES = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 16, 20, 24, 25, 30, 32, 40, 48, 50, 60] as const

/** The unit's frame rate: the allowed rate nearest the source's (30 when the source names none). */
export const unitFrameRate = (sourceFps: number | undefined): number => {
  const fps = sourceFps !== undefined && Number.isFinite(sourceFps) && sourceFps > 0 ? sourceFps : 30
  return RATES.reduce((best, rate) => (Math.abs(rate - fps) < Math.abs(best - fps) ? rate : best), 30)
}

export const samplesPerFrame = (fps: number): number => SAMPLE_RATE / fps

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))

/** Units in one periodic AAC chunk: the fewest whose samples are a whole number of AAC frames. */
export const unitsPerAudioPeriod = (unitSamples: number): number => AAC_FRAME / gcd(unitSamples, AAC_FRAME)

/**
 * The AAC packets of one period, in a continuous encode of three periods. ffmpeg's AAC encoder delays its
 * output by one frame (the priming packet): decoding from packet p + 1 on yields input frame p (the
 * first output frame, half-built without its overlap), then p + 1, ...; with p = one period, the chunk
 * starts at input frame 0 of a period and, repeated, every packet is followed by the packet that
 * followed it in the continuous encode. The returned range is [start, end).
 */
export const periodicPackets = (periodPackets: number) => ({ start: periodPackets + 1, end: 2 * periodPackets + 1 })

export type LoopStyle = "simple" | "crossfade" | "boomerang"

/** Frames of a unit made from `sourceFrames` frames: crossfade overlaps `fadeFrames`, boomerang turns at both ends without repeating a frame. */
export const unitFrames = (style: LoopStyle, sourceFrames: number, fadeFrames: number): number =>
  style === "crossfade" ? sourceFrames - fadeFrames : style === "boomerang" ? Math.max(1, 2 * sourceFrames - 2) : sourceFrames

/** Crossfade frames: the asked duration, at most a quarter of the source, at least one frame. */
export const fadeFrames = (seconds: number, sourceFrames: number, fps: number): number =>
  Math.max(1, Math.min(Math.round(seconds * fps), Math.floor(sourceFrames / 4)))

/**
 * The crossfade frames to use: within a quarter second of the asked ones (and at most a quarter of the
 * source), those that make the unit the fewest AAC frames per audio period (ideally one unit), closest to
 * the asked duration: the periodic audio chunk is then encoded from one unit, not up to 16.
 */
export const crossfadeFrames = (seconds: number, sourceFrames: number, fps: number): number => {
  const asked = fadeFrames(seconds, sourceFrames, fps)
  const slack = Math.max(1, Math.round(fps / 4))
  const max = Math.max(1, Math.floor(sourceFrames / 4))
  let best = asked
  for (let k = Math.max(1, asked - slack); k <= Math.min(max, asked + slack); k++) {
    const period = unitsPerAudioPeriod((sourceFrames - k) * samplesPerFrame(fps))
    const current = unitsPerAudioPeriod((sourceFrames - best) * samplesPerFrame(fps))
    if (period < current || (period === current && Math.abs(k - asked) < Math.abs(best - asked))) best = k
  }
  return best
}

/** One ADTS frame: offset and length in the byte stream. */
export interface AdtsFrame {
  readonly offset: number
  readonly length: number
}

/**
 * Splits an ADTS stream into its frames (ISO 14496-3 1.A.2: syncword 0xFFF, frame_length in 13 bits of
 * bytes 3-5). Hand-written: no maintained library splits ADTS, and this is a header field read.
 */
export const adtsFrames = (bytes: Uint8Array): Array<AdtsFrame> => {
  const frames: Array<AdtsFrame> = []
  let offset = 0
  while (offset + 7 <= bytes.length) {
    if (bytes[offset] !== 0xff || (bytes[offset + 1]! & 0xf0) !== 0xf0) throw new Error(`ADTS sync lost at byte ${offset}`)
    const length = ((bytes[offset + 3]! & 0x03) << 11) | (bytes[offset + 4]! << 3) | (bytes[offset + 5]! >> 5)
    if (length < 7 || offset + length > bytes.length) throw new Error(`ADTS frame at byte ${offset} has a bad length`)
    frames.push({ offset, length })
    offset += length
  }
  return frames
}
