import type { Readable } from "node:stream"
import { HttpServerResponse } from "@effect/platform"
import { NodeStream } from "@effect/platform-node"
import archiver from "archiver"
import { Effect, Runtime, Stream } from "effect"
import { Storage } from "../../services/platform/Storage.js"

export interface ZipEntry {
  /** The name inside the archive. */
  readonly name: string
  readonly storageKey: string
}

/**
 * Streams stored files to the client as one ZIP (archiver, a well-kept streaming archiver) in STORE
 * mode: mp4 does not compress, so nothing is recompressed. Never buffered whole: one entry's file is
 * open at a time (the next is appended when the archiver has taken the previous one), and the
 * archive is read as the client reads the response. A client that goes away aborts the archive and
 * the open file's stream.
 */
export const serveZip = (fileName: string, entries: ReadonlyArray<ZipEntry>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const runtime = yield* Effect.runtime<never>()
    // Checked before the answer starts (a missing object is a fault, not a broken archive); read lazily.
    const bodies = yield* Effect.forEach(entries, (entry) => storage.get(entry.storageKey)).pipe(Effect.orDie)
    const archive = archiver("zip", { store: true })
    let current: Readable | undefined
    let next = 0
    const appendNext = () => {
      if (next >= entries.length) {
        void archive.finalize()
        return
      }
      const index = next++
      current = Runtime.runSync(runtime)(NodeStream.toReadable(bodies[index]!))
      archive.append(current, { name: entries[index]!.name, store: true })
    }
    let finished = false
    archive.on("end", () => {
      finished = true
    })
    archive.on("entry", appendNext)
    appendNext()
    const body = NodeStream.fromReadable<Error>(() => archive, (error) => error instanceof Error ? error : new Error(String(error))).pipe(
      Stream.ensuring(Effect.sync(() => {
        if (finished) return
        current?.destroy()
        archive.abort()
      }))
    )
    return HttpServerResponse.stream(body, {
      status: 200,
      contentType: "application/zip",
      headers: {
        "content-disposition": `attachment; filename="${fileName}"`,
        "x-content-type-options": "nosniff",
        "cache-control": "private, no-store"
      }
    })
  })
