/**
 * The one email rule. Addresses are compared and stored as trim -> NFKC -> lower case -> NFKC
 * (lower-casing can leave a string that is not NFKC, e.g. U+0130 becomes `i` + U+0307, so the
 * result is normalised once more), so `é` (U+00E9) and `e` + U+0301, or fullwidth letters and
 * their ASCII forms, are one account.
 *
 * Refused rather than normalised: input without exactly one ASCII `@` before normalisation (NFKC
 * turns U+FF20 and U+FE6B into `@`, which would change where the domain starts), and any result
 * holding whitespace, control, format (zero-width), private-use or unassigned characters, which
 * make look-alike addresses. Distinct letters stay distinct: dotless `ı` is not `i`, and `ß` is not
 * `ss` (lower-casing, not case folding, as mail servers treat local parts).
 */
const ADDRESS = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{2,63}$/u
const INVISIBLE = /[\p{C}\p{Z}]/u

export const normalizeEmail = (raw: string): string => raw.trim().normalize("NFKC").toLowerCase().normalize("NFKC")

/** The normalised address, or undefined when the input is not one. */
export const parseEmail = (raw: string): string | undefined => {
  const trimmed = raw.trim()
  if (trimmed.split("@").length !== 2) return undefined
  const email = normalizeEmail(trimmed)
  if (email.split("@").length !== 2 || INVISIBLE.test(email)) return undefined
  return ADDRESS.test(email) && email.length <= 254 ? email : undefined
}
