import { createHash, timingSafeEqual } from "node:crypto"

/** Lower-case hex MD5 of the concatenated parts, the digest Duitku signs with (see duitkuFacts.ts). */
export const md5Hex = (...parts: ReadonlyArray<string>): string => createHash("md5").update(parts.join(""), "utf8").digest("hex")

/** Signature of a v2 inquiry: MD5(merchantCode + merchantOrderId + paymentAmount + apiKey). */
export const inquirySignature = (merchantCode: string, merchantOrderId: string, amount: number, apiKey: string) =>
  md5Hex(merchantCode, merchantOrderId, String(amount), apiKey)

/** Signature of a transaction status request: MD5(merchantCode + merchantOrderId + apiKey). */
export const statusSignature = (merchantCode: string, merchantOrderId: string, apiKey: string) =>
  md5Hex(merchantCode, merchantOrderId, apiKey)

/** Signature of a callback: MD5(merchantCode + amount + merchantOrderId + apiKey), over the amount exactly as received. */
export const callbackSignature = (merchantCode: string, amount: string, merchantOrderId: string, apiKey: string) =>
  md5Hex(merchantCode, amount, merchantOrderId, apiKey)

const MD5_HEX = /^[0-9a-fA-F]{32}$/

/**
 * Whether `received` is the hex digest `expected`, compared in constant time. Anything that is not
 * 32 hex characters is refused before the comparison (timingSafeEqual throws on unequal lengths),
 * so a malformed signature is a plain "no", never an exception.
 */
export const signatureMatches = (received: string, expected: string): boolean => {
  if (!MD5_HEX.test(received) || !MD5_HEX.test(expected)) return false
  return timingSafeEqual(Buffer.from(received.toLowerCase(), "hex"), Buffer.from(expected.toLowerCase(), "hex"))
}
