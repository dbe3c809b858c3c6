import type pg from "pg"

/** The tables test/fixtures/server.ts writes to: its orders, and its jobs' events (start, done, ffmpeg, comp-*). */
export const createFixtureTables = async (db: pg.Pool) => {
  await db.query(
    "CREATE TABLE IF NOT EXISTS fixture_job_events (job_id text NOT NULL, kind text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"
  )
  await db.query("CREATE TABLE IF NOT EXISTS fixture_orders (id text PRIMARY KEY)")
}

export const truncateFixtureTables = (db: pg.Pool) => db.query("TRUNCATE fixture_job_events, fixture_orders")
