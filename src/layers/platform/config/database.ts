import { section } from "./section.js"
import { duration, integer, secretWithDefault } from "./variable.js"

export const databaseSection = section("Postgres", {
  url: secretWithDefault({
    name: "DATABASE_URL",
    accepts: "postgres:// URL",
    default: "postgres://postgres@127.0.0.1:5432/lumiku",
    whenUnset: "the local development database (127.0.0.1:5432, database lumiku)",
    description: "created if missing, in development only"
  }),
  poolSize: integer({ name: "DB_POOL_SIZE", min: 1, max: 200, default: 10, description: "connections in the pool" }),
  connectTimeout: duration({ name: "DB_CONNECT_TIMEOUT", default: "5 seconds", description: "time to open a connection" }),
  statementTimeout: duration({ name: "DB_STATEMENT_TIMEOUT", default: "30 seconds", description: "a statement running longer is cancelled" })
}, (v, { env }) => ({ ...v, createIfMissing: env !== "production" }))
