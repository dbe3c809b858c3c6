import * as fs from "node:fs/promises"

/**
 * The metadata key the mix command writes the encoder name under, renamed to the real one after the render.
 *
 * Why: libavformat's muxer overwrites the format-level "encoder" tag itself (with its own version string, or
 * removes it in bit-exact mode), so `-metadata encoder=CapCut` never reaches the file. The mix writes the name
 * as "composer" (the iTunes `©wrt` atom, same shape as `©too`) and `renameEncoderAtom` renames that atom in
 * place: four bytes inside `moov`, no size or offset changes, so the file stays valid and reproducible.
 * No library edits MP4 metadata in place without rewriting the file; walking four box levels is a few lines.
 */
export const ENCODER_CARRIER_KEY = "composer"

const CARRIER = Buffer.from([0xa9, 0x77, 0x72, 0x74]) // ©wrt
const ENCODER = Buffer.from([0xa9, 0x74, 0x6f, 0x6f]) // ©too

/** The first child box named `type` in `[start, end)` of `data` (its start and end offsets). */
const findBox = (data: Buffer, start: number, end: number, type: string | Buffer): { at: number; end: number } | undefined => {
  let at = start
  while (at + 8 <= end) {
    let size = data.readUInt32BE(at)
    if (size === 1 && at + 16 <= end) size = Number(data.readBigUInt64BE(at + 8))
    else if (size === 0) size = end - at
    if (size < 8 || at + size > end) return undefined
    const name = data.subarray(at + 4, at + 8)
    if (typeof type === "string" ? name.toString("latin1") === type : name.equals(type)) return { at, end: at + size }
    at += size
  }
  return undefined
}

/**
 * Renames the `moov/udta/meta/ilst/©wrt` atom of `file` to `©too`. Reads only the boxes before `mdat` ends
 * (with +faststart `moov` is at the front). Returns false when the file has no such atom.
 */
export const renameEncoderAtom = async (file: string): Promise<boolean> => {
  const handle = await fs.open(file, "r+")
  try {
    const { size } = await handle.stat()
    // top-level boxes: read headers only until moov is found
    let at = 0
    const header = Buffer.alloc(16)
    while (at + 8 <= size) {
      await handle.read(header, 0, 16, at)
      let boxSize = header.readUInt32BE(0)
      if (boxSize === 1) boxSize = Number(header.readBigUInt64BE(8))
      else if (boxSize === 0) boxSize = size - at
      if (boxSize < 8) return false
      if (header.subarray(4, 8).toString("latin1") === "moov") {
        const moov = Buffer.alloc(boxSize)
        await handle.read(moov, 0, boxSize, at)
        const udta = findBox(moov, 8, moov.length, "udta")
        const meta = udta && findBox(moov, udta.at + 8, udta.end, "meta")
        // meta is a full box: 4 bytes of version and flags before its children
        const ilst = meta && findBox(moov, meta.at + 12, meta.end, "ilst")
        const carrier = ilst && findBox(moov, ilst.at + 8, ilst.end, CARRIER)
        if (carrier === undefined) return false
        await handle.write(ENCODER, 0, 4, at + carrier.at + 4)
        return true
      }
      at += boxSize
    }
    return false
  } finally {
    await handle.close()
  }
}
