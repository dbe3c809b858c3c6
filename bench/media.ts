import * as looping from "./media/looping.js"
import * as mixer from "./media/mixer.js"

/**
 * npm run bench:media: the media workloads, one part each (a module exporting `run`), measured in turn in
 * this one process. Each part prints its own table. BENCH_MEDIA_PARTS=mixer or =looping runs one.
 */
const parts: ReadonlyArray<{ readonly name: string; readonly run: () => Promise<void> }> = [
  { name: "mixer", run: mixer.run },
  { name: "looping", run: looping.run }
]
const selected = (process.env["BENCH_MEDIA_PARTS"] ?? parts.map((p) => p.name).join(",")).split(",")

for (const part of parts) if (selected.includes(part.name)) await part.run()
