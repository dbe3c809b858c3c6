import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { inject } from "vitest"

/** The environment of an app under test: this run's database and Redis prefix, quiet logs, no drain delay. */
export const testEnv = (overrides: Record<string, string> = {}): Record<string, string> => ({
  NODE_ENV: "test",
  DATABASE_URL: inject("databaseUrl"),
  REDIS_KEY_PREFIX: inject("redisKeyPrefix"),
  STORAGE_DIR: mkdtempSync(path.join(tmpdir(), "lumiku-test-storage-")),
  LOG_LEVEL: "warn",
  LOG_FORMAT: "json",
  SHUTDOWN_DRAIN_DELAY: "0",
  PORT: "0",
  HOST: "127.0.0.1",
  ...overrides
})
