import { type MixClip, type MixJobSettings, SPEED_MAX, SPEED_MIN } from "./MixSettings.js"

/**
 * The plan of one Video Mixer output: which clips, in which order, how much of each and how fast. Pure:
 * the same settings, seed and index always give the same plan, and each output's plan depends only on
 * (seed, index), so any output can be reproduced on its own.
 */

export interface PlannedClip {
  readonly videoId: string
  readonly storageKey: string
  /** Where the clip starts being used, in source seconds. */
  readonly start: number
  /** How much of the source is used, in source seconds. */
  readonly duration: number
  /** Playback speed (>1 is faster): the clip lasts `duration / speed` in the output. */
  readonly speed: number
}

export interface MixPlan {
  readonly index: number
  readonly clips: ReadonlyArray<PlannedClip>
  /** The output's length in seconds: the sum of every clip's `duration / speed`. */
  readonly durationSeconds: number
}

/** Below this gap between the natural length and the fixed target, nothing is changed (the old system's rule). */
export const DURATION_TOLERANCE = 0.1

// mulberry32 (Tommy Ettinger, public domain): a dozen lines with a known, well-tested output sequence; a
// package would add nothing. Seeded through murmur3's finaliser from (seed, index), so outputs are independent.
const fmix32 = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A uniform [0, 1) generator for output `index` of a generation seeded with `seed` (any safe integer). */
export const outputRandom = (seed: number, index: number): (() => number) => {
  const low = seed >>> 0
  const high = Math.floor(seed / 2 ** 32) >>> 0
  let state = fmix32(fmix32(low ^ 0x9e3779b9) ^ fmix32(high + 0x7f4a7c15) ^ fmix32(Math.imul(index + 1, 0x27d4eb2f)))
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pick = <A>(items: ReadonlyArray<A>, random: () => number): A => items[Math.floor(random() * items.length)]!

const shuffle = <A>(items: ReadonlyArray<A>, random: () => number): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

const byOrder = <A extends { readonly order: number }>(items: ReadonlyArray<A>): Array<A> =>
  items.map((item, position) => ({ item, position }))
    .sort((a, b) => a.item.order - b.item.order || a.position - b.position)
    .map(({ item }) => item)

/**
 * The clips output `index` uses, in order. With group mixing, one clip per group that has clips (groups in
 * order): sequential takes the group's `index mod size`-th clip, random a seeded one. Ungrouped clips are left
 * out then, as the old system did (a group mix is "one of each group"), unless no group has a clip at all:
 * the generation was charged, so it then mixes every clip instead of rendering nothing.
 */
const chooseClips = (settings: MixJobSettings, index: number, random: () => number): Array<MixClip> => {
  const clips = byOrder(settings.clips)
  if (!settings.enableGroupMixing) return clips
  const chosen: Array<MixClip> = []
  for (const group of byOrder(settings.groups)) {
    const members = clips.filter((clip) => clip.groupId === group.groupId)
    if (members.length === 0) continue
    chosen.push(settings.groupMixingMode === "sequential" ? members[index % members.length]! : pick(members, random))
  }
  return chosen.length > 0 ? chosen : clips
}

/**
 * Lengths (output seconds) summing to `target`, shared by `weights` and never above `caps`: what a clip cannot
 * take is shared again among the others (water filling). Below the caps' sum the target is met exactly.
 */
export const distribute = (weights: ReadonlyArray<number>, caps: ReadonlyArray<number>, target: number): Array<number> => {
  const out = caps.map(() => 0)
  let open = caps.map((_, k) => k)
  let left = target
  while (open.length > 0 && left > 1e-9) {
    const total = open.reduce((sum, k) => sum + weights[k]!, 0)
    if (total <= 0) break
    const capped = open.filter((k) => (weights[k]! / total) * left >= caps[k]! - out[k]!)
    if (capped.length === 0) {
      for (const k of open) out[k] = out[k]! + (weights[k]! / total) * left
      break
    }
    for (const k of capped) {
      left -= caps[k]! - out[k]!
      out[k] = caps[k]!
    }
    open = open.filter((k) => !capped.includes(k))
  }
  return out
}

const clampSpeed = (speed: number) => Math.min(SPEED_MAX, Math.max(SPEED_MIN, speed))

interface Working {
  readonly clip: MixClip
  readonly duration: number
  readonly speed: number
}

const played = (w: Working) => w.duration / w.speed

/** Fits the clips to the fixed duration `target` (see the README's Video Mixer section). */
const fitDuration = (settings: MixJobSettings, items: Array<Working>, target: number): Array<Working> => {
  const natural = items.reduce((sum, w) => sum + played(w), 0)
  if (Math.abs(natural - target) < DURATION_TOLERANCE) return items
  if (settings.smartDistribution) {
    const lengths = items.map(played)
    const weights = lengths.map((d) =>
      settings.distributionMode === "equal" ? 1 : settings.distributionMode === "proportional" ? d : d ** 1.5
    )
    const shares = distribute(weights, lengths, target)
    const trimmed = items.map((w, k) => ({ ...w, duration: shares[k]! * w.speed }))
    // Longer than every clip together: trims cannot lengthen, so the whole mix is slowed down as far as allowed.
    return natural < target ? slowDown(trimmed, natural / target) : trimmed
  }
  // Without smart distribution one speed factor fits the mix: natural/target, within what setpts/atempo keep exact.
  return cutTo(slowDown(items, natural / target), target)
}

const slowDown = (items: Array<Working>, factor: number): Array<Working> =>
  items.map((w) => ({ ...w, speed: w.speed * clampSpeed(factor) }))

/** Keeps the first `target` output seconds (a factor clamped at the maximum speed still leaves the mix too long). */
const cutTo = (items: Array<Working>, target: number): Array<Working> => {
  const out: Array<Working> = []
  let left = target
  for (const w of items) {
    if (left <= 1e-9) break
    const length = Math.min(played(w), left)
    out.push({ ...w, duration: length * w.speed })
    left -= length
  }
  return out
}

/** The plan of output `index` (0-based) of a generation with `settings` and `seed`. */
export const planOutput = (settings: MixJobSettings, seed: number, index: number): MixPlan => {
  const random = outputRandom(seed, index)
  let clips = chooseClips(settings, index, random)
  if (settings.enableOrderMixing) clips = shuffle(clips, random)
  if (settings.enableDifferentStart && index > 0 && clips.length > 0) {
    const by = index % clips.length
    clips = [...clips.slice(by), ...clips.slice(0, by)]
  }
  if (settings.fixedStartVideoId !== undefined && index === 0) {
    const at = clips.findIndex((clip) => clip.videoId === settings.fixedStartVideoId)
    if (at > 0) clips = [clips[at]!, ...clips.slice(0, at), ...clips.slice(at + 1)]
  }
  let items: Array<Working> = clips.map((clip) => ({
    clip,
    duration: clip.durationSeconds,
    speed: settings.enableSpeedVariations ? settings.speedMin + random() * (settings.speedMax - settings.speedMin) : 1
  }))
  if (settings.durationType === "fixed" && settings.fixedDuration !== undefined) {
    items = fitDuration(settings, items, settings.fixedDuration)
  }
  const planned = items
    .filter((w) => w.duration > 1e-6)
    .map((w): PlannedClip => ({ videoId: w.clip.videoId, storageKey: w.clip.storageKey, start: 0, duration: w.duration, speed: w.speed }))
  return {
    index,
    clips: planned,
    durationSeconds: planned.reduce((sum, c) => sum + c.duration / c.speed, 0)
  }
}
