import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { loopCreditCost } from "../../src/services/loopingFlow/loopCost.js"
import { layerFields } from "../../src/services/loopingFlow/LoopingFlow.js"
import {
  adtsFrames,
  crossfadeFrames,
  fadeFrames,
  periodicPackets,
  samplesPerFrame,
  unitFrameRate,
  unitFrames,
  unitsPerAudioPeriod
} from "../../src/services/loopingFlow/loopPlan.js"

describe("the loop's credit cost (spec 3.2)", () => {
  it("matches every example of the spec", () => {
    const minutes = (m: number) => m * 60
    expect(loopCreditCost(minutes(10))).toBe(2)
    expect(loopCreditCost(minutes(30))).toBe(6)
    expect(loopCreditCost(minutes(60))).toBe(12)
    expect(loopCreditCost(minutes(120))).toBe(24)
    expect(loopCreditCost(minutes(300))).toBe(60)
    expect(loopCreditCost(minutes(360))).toBe(74)
    expect(loopCreditCost(minutes(480))).toBe(102)
  })
  it("is at least 2, and counts started 10-minute blocks and started hours past 5", () => {
    expect(loopCreditCost(1)).toBe(2)
    expect(loopCreditCost(601)).toBe(4)
    expect(loopCreditCost(18_000)).toBe(60)
    expect(loopCreditCost(18_001)).toBe(62 + 2)
  })
})

describe("the loop plan", () => {
  it("picks a frame rate that divides 48 kHz, nearest the source's", () => {
    expect(unitFrameRate(25)).toBe(25)
    expect(unitFrameRate(29.97)).toBe(30)
    expect(unitFrameRate(23.976)).toBe(24)
    expect(unitFrameRate(59.94)).toBe(60)
    expect(unitFrameRate(undefined)).toBe(30)
    expect(unitFrameRate(1000)).toBe(60)
    for (const fps of [1, 12, 24, 25, 30, 50, 60]) expect(Number.isInteger(samplesPerFrame(unitFrameRate(fps)))).toBe(true)
  })
  it("sizes units: crossfade overlaps, boomerang turns without repeating an end frame", () => {
    expect(unitFrames("simple", 64, 13)).toBe(64)
    expect(unitFrames("crossfade", 64, 13)).toBe(51)
    expect(unitFrames("boomerang", 64, 13)).toBe(126)
    expect(fadeFrames(0.5, 64, 25)).toBe(13)
    expect(fadeFrames(2, 64, 25)).toBe(16) // at most a quarter of the source
    expect(fadeFrames(0.5, 4, 60)).toBe(1)
  })
  it("moves the crossfade by at most a quarter second so the unit is whole AAC frames", () => {
    expect(crossfadeFrames(0.5, 64, 25)).toBe(16) // 48 x 1920 = 90 x 1024
    expect(unitsPerAudioPeriod((270 - crossfadeFrames(1, 270, 30)) * 1600)).toBe(1)
    expect(Math.abs(crossfadeFrames(1, 270, 30) - 30)).toBeLessThanOrEqual(8)
    expect(crossfadeFrames(2, 8, 25)).toBe(2) // never past a quarter of the source
  })
  it("an audio period is the fewest units that are whole AAC frames, and its packets start one past a period", () => {
    expect(unitsPerAudioPeriod(64 * 1920)).toBe(1) // 122880 = 120 x 1024
    expect(unitsPerAudioPeriod(51 * 1920)).toBe(8) // 97920 = 2^7 x 765
    const units = unitsPerAudioPeriod(63 * 1920)
    expect((units * 63 * 1920) % 1024).toBe(0)
    expect(periodicPackets(465)).toEqual({ start: 466, end: 931 })
  })
  it("splits ADTS frames by their headers and refuses a broken stream", () => {
    const frame = (length: number) => {
      const bytes = new Uint8Array(length)
      bytes.set([0xff, 0xf1, 0x50, 0x80 | ((length >> 11) & 0x03), (length >> 3) & 0xff, ((length & 0x07) << 5) | 0x1f, 0xfc])
      return bytes
    }
    const stream = new Uint8Array([...frame(20), ...frame(9), ...frame(300)])
    expect(adtsFrames(stream)).toEqual([{ offset: 0, length: 20 }, { offset: 20, length: 9 }, { offset: 29, length: 300 }])
    expect(() => adtsFrames(new Uint8Array([...frame(20), 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66]))).toThrow(/sync/)
    expect(() => adtsFrames(frame(20).subarray(0, 15))).toThrow(/length/)
  })
})

describe("an audio layer's multipart fields", () => {
  it("takes the index 0-3 and the ranges, with defaults", () => {
    expect(Either.getOrThrow(layerFields({ layerIndex: "2" }))).toEqual({ layerIndex: 2, volume: 100, fadeIn: 0, fadeOut: 0, muted: false })
    expect(Either.getOrThrow(layerFields({ layerIndex: "0", volume: "35", fadeIn: "1.5", fadeOut: "10", muted: "true" })))
      .toEqual({ layerIndex: 0, volume: 35, fadeIn: 1.5, fadeOut: 10, muted: true })
  })
  it.each([
    [{}, "layerIndex"],
    [{ layerIndex: "4" }, "layerIndex"],
    [{ layerIndex: "-1" }, "layerIndex"],
    [{ layerIndex: "1.0" }, "layerIndex"],
    [{ layerIndex: "1", volume: "101" }, "volume"],
    [{ layerIndex: "1", volume: "abc" }, "volume"],
    [{ layerIndex: "1", volume: "1e3" }, "volume"],
    [{ layerIndex: "1", fadeIn: "11" }, "fadeIn"],
    [{ layerIndex: "1", fadeOut: "-1" }, "fadeOut"],
    [{ layerIndex: "1", muted: "yes" }, "muted"]
  ])("refuses %j (field %s)", (fields, field) => {
    const result = layerFields(fields as Record<string, string>)
    expect(Either.isLeft(result) && result.left.field).toBe(field)
  })
})
