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

/** A production configuration that passes every rule; tests break one thing at a time. */
export const productionEnv: Readonly<Record<string, string>> = {
  NODE_ENV: "production",
  JWT_SECRET: "q8V#t2LmZ9w!Rk4sPz7YxN1c@Hd6Jf3Gb5Uv0Ea",
  DUITKU_MERCHANT_CODE: "D18472",
  DUITKU_API_KEY: "f3a9c0b7e2d54c1a8b6e9f0d2c4a7b1e",
  DUITKU_CALLBACK_URL: "https://api.lumiku.com/api/payment/duitku/callback",
  DUITKU_RETURN_URL: "https://app.lumiku.com/credits",
  CORS_ORIGIN: "https://app.lumiku.com,https://*.lumiku.com",
  REDIS_PASSWORD: "r3d1s-pw-Xk29qLm",
  METRICS_TOKEN: "m7Qp2Wx9Lr4Tz8Kc1Vb6Nh3Jd5Gf0Sa2"
}
