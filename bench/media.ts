import * as mixer from "./media/mixer.js"

/**
 * npm run bench:media: the media workloads, one part each (a module exporting `run`), measured in turn in
 * this one process. Each part prints its own table.
 */
const parts: ReadonlyArray<{ readonly run: () => Promise<void> }> = [mixer]

for (const part of parts) await part.run()
