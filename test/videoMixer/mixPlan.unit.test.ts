import { describe, expect, it } from "vitest"
import type { MixClip, MixJobSettings } from "../../src/services/videoMixer/MixSettings.js"
import { distribute, outputRandom, planOutput } from "../../src/services/videoMixer/mixPlan.js"
import { atempoChain, buildMixCommand, mixArgv } from "../../src/workers/videoMixer/mixCommand.js"
import { mixSettings } from "./settings.js"

const clip = (videoId: string, order: number, durationSeconds: number, groupId: string | null = null): MixClip => ({
  videoId, groupId, order, storageKey: `uploads/u/${videoId}.mp4`, durationSeconds, width: 160, height: 120
})

const base: MixJobSettings = {
  ...mixSettings({ videoBitrate: "medium" }),
  clips: [clip("a", 0, 2), clip("b", 1, 4), clip("c", 2, 6), clip("d", 3, 8), clip("e", 4, 10)],
  groups: []
}

const ids = (s: MixJobSettings, seed: number, i: number) => planOutput(s, seed, i).clips.map((c) => c.videoId).join("")
const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

describe("mixPlan", () => {
  it("with no option uses every clip in project order, whole, at speed 1", () => {
    const shuffledInput = { ...base, clips: [...base.clips].reverse() }
    const plan = planOutput(shuffledInput, 7, 3)
    expect(plan.clips.map((c) => c.videoId)).toEqual(["a", "b", "c", "d", "e"])
    expect(plan.clips.every((c) => c.start === 0 && c.speed === 1)).toBe(true)
    expect(plan.clips.map((c) => c.duration)).toEqual([2, 4, 6, 8, 10])
    expect(plan.durationSeconds).toBe(30)
  })

  it("order mixing shuffles per output, reproducibly from (seed, index), and seeds differ", () => {
    const s = { ...base, enableOrderMixing: true }
    const orders = Array.from({ length: 8 }, (_, i) => ids(s, 1234, i))
    expect(new Set(orders).size).toBeGreaterThan(4)
    for (const o of orders) expect([...o].sort().join("")).toBe("abcde")
    // each output on its own: the same plan whatever else was planned
    expect(ids(s, 1234, 5)).toBe(orders[5])
    expect(Array.from({ length: 8 }, (_, i) => ids(s, 99, i))).not.toEqual(orders)
    // the generator is uniform enough that a shuffle reaches every position
    const firsts = new Set(Array.from({ length: 60 }, (_, i) => ids(s, 5, i)[0]))
    expect(firsts.size).toBe(5)
  })

  it("seeded randomness: same seed same stream, large seeds and neighbouring indexes differ", () => {
    const a = outputRandom(2 ** 40 + 3, 0)
    const b = outputRandom(2 ** 40 + 3, 0)
    const xs = Array.from({ length: 5 }, a)
    expect(Array.from({ length: 5 }, b)).toEqual(xs)
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true)
    expect(outputRandom(3, 0)()).not.toBe(outputRandom(2 ** 40 + 3, 0)())
    expect(outputRandom(3, 0)()).not.toBe(outputRandom(3, 1)())
  })

  it("different start rotates left by index mod n; output 0 is not rotated", () => {
    const s = { ...base, enableDifferentStart: true }
    expect(ids(s, 1, 0)).toBe("abcde")
    expect(ids(s, 1, 1)).toBe("bcdea")
    expect(ids(s, 1, 3)).toBe("deabc")
    expect(ids(s, 1, 5)).toBe("abcde")
    expect(ids(s, 1, 7)).toBe("cdeab")
  })

  it("fixedStartVideoId opens output 0 only, by video id", () => {
    const s = { ...base, fixedStartVideoId: "d" }
    expect(ids(s, 1, 0)).toBe("dabce")
    expect(ids(s, 1, 1)).toBe("abcde")
    const mixed = { ...s, enableOrderMixing: true }
    for (const seed of [1, 2, 3, 4]) expect(ids(mixed, seed, 0)[0]).toBe("d")
    expect(ids({ ...base, fixedStartVideoId: "nope" }, 1, 0)).toBe("abcde")
  })

  it("group mixing: one clip per non-empty group in group order; sequential cycles, random is seeded; ungrouped excluded", () => {
    const clips = [
      clip("x1", 0, 1, "gx"), clip("x2", 1, 1, "gx"), clip("x3", 2, 1, "gx"),
      clip("y1", 3, 1, "gy"), clip("y2", 4, 1, "gy"),
      clip("loose", 5, 1)
    ]
    const groups = [{ groupId: "gy", order: 1 }, { groupId: "gx", order: 0 }, { groupId: "empty", order: 2 }]
    const s: MixJobSettings = { ...base, enableGroupMixing: true, clips, groups }
    const seq = Array.from({ length: 6 }, (_, i) => planOutput(s, 1, i).clips.map((c) => c.videoId))
    expect(seq).toEqual([["x1", "y1"], ["x2", "y2"], ["x3", "y1"], ["x1", "y2"], ["x2", "y1"], ["x3", "y2"]])
    const random = { ...s, groupMixingMode: "random" as const }
    const picks = Array.from({ length: 30 }, (_, i) => planOutput(random, 8, i).clips.map((c) => c.videoId))
    for (const p of picks) {
      expect(p).toHaveLength(2)
      expect(p[0]).toMatch(/^x/)
      expect(p[1]).toMatch(/^y/)
    }
    expect(new Set(picks.map((p) => p[0])).size).toBe(3)
    expect(picks).not.toEqual(Array.from({ length: 30 }, (_, i) => planOutput(random, 9, i).clips.map((c) => c.videoId)))
    // no group has a clip: every clip is mixed rather than nothing
    const empty = { ...base, enableGroupMixing: true, groups: [{ groupId: "g", order: 0 }] }
    expect(ids(empty, 1, 0)).toBe("abcde")
  })

  it("speed variations draw a seeded speed per clip within [speedMin, speedMax]", () => {
    const s = { ...base, enableSpeedVariations: true, speedMin: 0.75, speedMax: 1.5 }
    const plan = planOutput(s, 3, 0)
    for (const c of plan.clips) {
      expect(c.speed).toBeGreaterThanOrEqual(0.75)
      expect(c.speed).toBeLessThanOrEqual(1.5)
    }
    expect(new Set(plan.clips.map((c) => c.speed)).size).toBe(5)
    expect(plan.durationSeconds).toBeCloseTo(sum(plan.clips.map((c) => c.duration / c.speed)), 9)
    expect(plan.durationSeconds).not.toBeCloseTo(30, 1)
    expect(planOutput(s, 3, 0)).toEqual(plan)
    expect(planOutput({ ...base, speedMin: 0.75, speedMax: 1.5 }, 3, 0).clips.every((c) => c.speed === 1)).toBe(true)
  })

  it("fixed duration with smart distribution: equal, proportional and weighted trims reach the target exactly", () => {
    const fixed = { ...base, durationType: "fixed" as const, fixedDuration: 15, smartDistribution: true }
    const equal = planOutput({ ...fixed, distributionMode: "equal" }, 1, 0)
    // 3 s each, except the 2 s clip, whose last second is shared by the others
    expect(equal.clips.map((c) => c.duration)).toEqual([2, 3.25, 3.25, 3.25, 3.25])
    const proportional = planOutput({ ...fixed, distributionMode: "proportional" }, 1, 0)
    expect(proportional.clips.map((c) => c.duration)).toEqual([1, 2, 3, 4, 5])
    const weighted = planOutput({ ...fixed, distributionMode: "weighted" }, 1, 0)
    const w = [2, 4, 6, 8, 10].map((d) => d ** 1.5)
    weighted.clips.forEach((c, k) => expect(c.duration).toBeCloseTo((w[k]! / sum(w)) * 15, 9))
    for (const plan of [equal, proportional, weighted]) {
      expect(plan.durationSeconds).toBeCloseTo(15, 9)
      expect(plan.clips.every((c) => c.speed === 1)).toBe(true)
    }
    // weighted favours long clips more than proportional does
    expect(weighted.clips[4]!.duration).toBeGreaterThan(proportional.clips[4]!.duration)
    // longer than all clips together: whole clips, slowed down to reach it (at most to half speed)
    const longer = planOutput({ ...fixed, fixedDuration: 45 }, 1, 0)
    expect(longer.clips.map((c) => c.duration)).toEqual([2, 4, 6, 8, 10])
    expect(longer.durationSeconds).toBeCloseTo(45, 9)
    expect(planOutput({ ...fixed, fixedDuration: 100 }, 1, 0).durationSeconds).toBeCloseTo(60, 9)
  })

  it("fixed duration without smart distribution: one speed factor T/F, clamped, then cut", () => {
    const fixed = { ...base, durationType: "fixed" as const, fixedDuration: 20 }
    const faster = planOutput(fixed, 1, 0)
    expect(faster.clips.every((c) => c.speed === 1.5)).toBe(true)
    expect(faster.durationSeconds).toBeCloseTo(20, 9)
    const slower = planOutput({ ...fixed, fixedDuration: 40 }, 1, 0)
    expect(slower.clips.every((c) => c.speed === 0.75)).toBe(true)
    expect(slower.durationSeconds).toBeCloseTo(40, 9)
    // 30 s into 5 s: at most twice as fast (15 s), then the end is cut
    const cut = planOutput({ ...fixed, fixedDuration: 5 }, 1, 0)
    expect(cut.clips.map((c) => [c.videoId, c.speed, c.duration])).toEqual([["a", 2, 2], ["b", 2, 4], ["c", 2, 4]])
    expect(cut.durationSeconds).toBeCloseTo(5, 9)
    // within 0.1 s of the natural length nothing changes
    expect(planOutput({ ...fixed, fixedDuration: 30.05 }, 1, 0)).toEqual(planOutput(base, 1, 0))
  })

  it("distribute shares by weight under caps and never exceeds them", () => {
    expect(distribute([1, 1, 1], [10, 10, 10], 9)).toEqual([3, 3, 3])
    expect(distribute([1, 1, 1], [1, 10, 10], 9)).toEqual([1, 4, 4])
    expect(sum(distribute([1, 5, 1], [2, 2, 2], 10))).toBe(6)
  })
})

describe("mix command", () => {
  const plan = planOutput({ ...base, enableSpeedVariations: true, speedMin: 0.5, speedMax: 2 }, 4, 0)
  const inputs = plan.clips.map((_, k) => ({ file: `/tmp/in_${k}`, hasAudio: k !== 1 }))

  it("normalises every input, gives silent inputs a silent track, and concatenates", () => {
    const command = buildMixCommand(base, plan, inputs, "/tmp/out.mp4")
    const graph = command.outputOptions[command.outputOptions.indexOf("-filter_complex") + 1]!
    for (let k = 0; k < 5; k++) {
      expect(graph).toContain(`[${k}:v:0]scale=480:854:force_original_aspect_ratio=decrease,pad=480:854:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,format=yuv420p`)
    }
    expect(graph.match(/anullsrc=channel_layout=stereo:sample_rate=48000/g)).toHaveLength(1)
    expect(graph).not.toContain("[1:a")
    expect(graph.match(/aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo/g)).toHaveLength(4)
    expect(graph).toContain("concat=n=5:v=1:a=1[outv][outa]")
    expect(graph.match(/fps=30/g)).toHaveLength(5)
    expect(command.durationSeconds).toBe(plan.durationSeconds)
    const muted = buildMixCommand({ ...base, audioOption: "mute" }, plan, inputs, "/tmp/out.mp4")
    expect(muted.outputOptions).toContain("-an")
    expect(muted.outputOptions.join(" ")).not.toMatch(/anullsrc|\[outa\]|aac/)
  })

  it("maps bitrate, frame rate, metadata and bit-exact flags to output options, as an argument array", () => {
    const command = buildMixCommand({ ...base, videoBitrate: "high", frameRate: 60, metadataSource: "instagram" }, plan, inputs, "/tmp/o ut.mp4")
    const args = mixArgv(command)
    const after = (flag: string) => args[args.indexOf(flag) + 1]
    expect([after("-b:v"), after("-maxrate"), after("-bufsize"), after("-r")]).toEqual(["5000k", "5000k", "10000k", "60"])
    expect(args).toContain("composer=Instagram")
    expect(args).toContain("comment=Instagram Reels")
    expect(after("-fflags")).toBe("+bitexact")
    expect(after("-threads")).toBe("1")
    expect(after("-movflags")).toBe("+faststart")
    expect(args.filter((a) => a === "-i")).toHaveLength(5)
    expect(args.at(-1)).toBe("file:/tmp/o ut.mp4")
    expect(args).toContain("file:/tmp/in_0")
  })

  it("chains atempo within [0.5, 2]", () => {
    expect(atempoChain(1.5)).toEqual([1.5])
    expect(atempoChain(4)).toEqual([2, 2])
    expect(atempoChain(0.25)).toEqual([0.5, 0.5])
    const chain = atempoChain(3)
    expect(chain.reduce((a, b) => a * b, 1)).toBeCloseTo(3, 12)
    expect(chain.every((f) => f >= 0.5 && f <= 2)).toBe(true)
  })
})
