import { createHash } from "node:crypto"

/** SHA-256 of a string's UTF-8 bytes. */
export const sha256 = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/** SHA-256 as base64url: the stored form of a secret that is looked up by its digest (refresh tokens). */
export const sha256Base64url = (text: string): string => sha256(text).toString("base64url")
