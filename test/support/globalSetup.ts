import { randomBytes } from "node:crypto"
import { Redis } from "ioredis"
import pg from "pg"
import type { TestProject } from "vitest/node"
import type {} from "vitest"

/**
 * One database and one Redis key prefix per test run, so runs never see each other's data.
 * The database is dropped when the run ends.
 */
export default async function setup(project: TestProject) {
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`
  const database = `lumiku_test_${runId}`
  const admin = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" })
  await admin.connect()
  await admin.query(`CREATE DATABASE "${database}"`)
  await admin.end()
  project.provide("databaseUrl", `postgres://postgres@127.0.0.1:5432/${database}`)
  project.provide("redisKeyPrefix", `lumiku_test:${runId}:`)
  project.provide("runId", runId)
  return async () => {
    const client = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" })
    await client.connect()
    await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)
    await client.end()
    const redis = new Redis({ host: "127.0.0.1", port: 6379, lazyConnect: true })
    await redis.connect()
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `lumiku_test:${runId}:*`, "COUNT", 500)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== "0")
    await redis.quit()
  }
}

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
    redisKeyPrefix: string
    runId: string
  }
}
