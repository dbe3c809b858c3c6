import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    // The suite drives real Postgres, Redis, ffmpeg and child processes on a 2-core machine:
    // files run one at a time so timing assertions are not at the mercy of a sibling file.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
