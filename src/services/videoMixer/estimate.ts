import type { MixSettings } from "./MixSettings.js"

/** What the estimate reads of a project: its clips (duration and group) and its group ids. */
export interface EstimateInput {
  readonly clips: ReadonlyArray<{ readonly durationSeconds: number; readonly groupId: string | null }>
  readonly groupIds: ReadonlyArray<string>
  readonly settings: MixSettings
  readonly totalVideos: number
  readonly creditCostPerVideo: number
}

export const STRENGTH_LABELS = ["None", "Weak", "Fair", "Good", "Strong", "Excellent"] as const
export type StrengthLabel = typeof STRENGTH_LABELS[number]

/** Past this many videos or groups the count of orders is not shown (null), as the old backend did. */
const COMBINATIONS_LIMIT = 10

const factorial = (n: number): number => (n <= 1 ? 1 : n * factorial(n - 1))
const round2 = (n: number) => Math.round(n * 100) / 100

/** How different the outputs are from each other, 0-5 (lumiku.md 4.1). */
export const strengthOf = (s: MixSettings): number => {
  let strength = 0
  if (s.enableOrderMixing) strength += 1
  if (s.enableDifferentStart) strength += 1
  if (s.enableGroupMixing) strength += s.groupMixingMode === "random" ? 2 : 1
  if (s.enableSpeedVariations) strength += 1
  return Math.min(5, strength)
}

/**
 * The estimate of lumiku.md 4.1. The duration of one output follows the renderer's input choice
 * (mixPlan): with group mixing and at least one non-empty group, one clip per non-empty group (its mean
 * duration) and ungrouped clips left out; otherwise every clip. A fixed duration is the output's length;
 * speed variations divide by the mean speed of their range.
 */
export const estimateMix = (input: EstimateInput) => {
  const { clips, groupIds, settings } = input
  const byGroup = new Map<string, Array<number>>()
  for (const clip of clips) {
    if (clip.groupId !== null) byGroup.set(clip.groupId, [...(byGroup.get(clip.groupId) ?? []), clip.durationSeconds])
  }
  const grouped = settings.enableGroupMixing && byGroup.size > 0
  const sourceSeconds = grouped
    ? [...byGroup.values()].reduce((sum, durations) => sum + durations.reduce((a, b) => a + b, 0) / durations.length, 0)
    : clips.reduce((sum, clip) => sum + clip.durationSeconds, 0)
  const speed = settings.enableSpeedVariations ? (settings.speedMin + settings.speedMax) / 2 : 1
  const perVideo = settings.durationType === "fixed" && settings.fixedDuration !== undefined
    ? settings.fixedDuration
    : sourceSeconds / speed
  const n = clips.length
  const g = groupIds.length
  const possibleCombinations = n > COMBINATIONS_LIMIT || g > COMBINATIONS_LIMIT
    ? null
    : factorial(n) * (settings.enableGroupMixing && g > 1 ? factorial(g) : 1)
  const strength = strengthOf(settings)
  return {
    totalSourceVideos: n,
    totalGroups: g,
    estimatedDurationPerVideo: round2(perVideo),
    totalVideosToGenerate: input.totalVideos,
    possibleCombinations,
    creditCostPerVideo: input.creditCostPerVideo,
    totalCreditCost: input.creditCostPerVideo * input.totalVideos,
    strength,
    strengthLabel: STRENGTH_LABELS[strength]!
  }
}
export type MixEstimate = ReturnType<typeof estimateMix>
