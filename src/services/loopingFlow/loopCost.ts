/** The longest loop a generation may ask for: 8 hours, in seconds. */
export const MAX_TARGET_SECONDS = 8 * 3600
/** The shortest: one second. */
export const MIN_TARGET_SECONDS = 1

/**
 * The credit cost of a loop of `targetSeconds` (spec 3.2, the web app mirrors it): 2 per started 10
 * minutes, at least 2, plus 2 per started hour beyond 5 hours.
 */
export const loopCreditCost = (targetSeconds: number): number => {
  const base = Math.max(2, Math.ceil(targetSeconds / 600) * 2)
  return targetSeconds > 5 * 3600 ? base + 2 * Math.ceil(targetSeconds / 3600 - 5) : base
}
