import { describe, expect, it } from "vitest"
import { parseRange } from "../../src/http/uploads/download.js"
import { contentDisposition, displayName } from "../../src/services/uploads/fileName.js"
import { probeProblem } from "../../src/services/uploads/uploadKinds.js"

describe("Range parsing", () => {
  it("reads one bytes= range, clamps its end, and refuses what cannot be satisfied", () => {
    expect(parseRange(undefined, 100)).toBeUndefined()
    expect(parseRange("bytes=0-9", 100)).toEqual({ start: 0, end: 9 })
    expect(parseRange("bytes=90-", 100)).toEqual({ start: 90, end: 99 })
    expect(parseRange("bytes=90-500", 100)).toEqual({ start: 90, end: 99 })
    expect(parseRange("bytes=-10", 100)).toEqual({ start: 90, end: 99 })
    expect(parseRange("bytes=-500", 100)).toEqual({ start: 0, end: 99 })
    expect(parseRange("bytes=100-", 100)).toBe("unsatisfiable")
    expect(parseRange("bytes=9-3", 100)).toBe("unsatisfiable")
    expect(parseRange("bytes=-0", 100)).toBe("unsatisfiable")
    // several ranges or another unit: the whole file, as RFC 9110 allows
    expect(parseRange("bytes=0-1,5-6", 100)).toBeUndefined()
    expect(parseRange("items=0-1", 100)).toBeUndefined()
  })
})

describe("display names", () => {
  it("keep no path, quoting or shell syntax, and never an empty name", () => {
    expect(displayName("../../etc/passwd.mp4")).toBe("passwd")
    expect(displayName("C:\\\\x\\\\evil.mp4")).toBe("evil")
    expect(displayName("$(touch pwned).mp4")).toBe("_(touch pwned)")
    expect(displayName("...")).toBe("file")
    expect(displayName(undefined)).toBe("file")
    expect(displayName("a".repeat(500) + ".mp4")).toHaveLength(120)
    expect(contentDisposition("é clip", "mp4")).toBe(`attachment; filename="_ clip.mp4"; filename*=UTF-8''%C3%A9%20clip.mp4`)
  })
})

describe("probe rules", () => {
  const video = (width: number, height: number, durationSeconds = 2) => ({
    durationSeconds,
    formatName: "mov",
    streams: [{ index: 0, codecType: "video", width, height }]
  })
  it("needs the kind's stream, a duration within the limit, and a frame no larger than 8K", () => {
    expect(probeProblem("video", video(1920, 1080), 60)).toBeUndefined()
    expect(probeProblem("audio", video(1920, 1080), 60)).toMatch(/no audio stream/)
    expect(probeProblem("video", video(1920, 1080, 61), 60)).toMatch(/longer than the limit/)
    expect(probeProblem("video", video(7680, 4320), 60)).toBeUndefined()
    expect(probeProblem("video", video(7681, 4320), 60)).toMatch(/larger than 8K/)
  })
})
