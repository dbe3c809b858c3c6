import { section } from "./section.js"
import { duration, integer, optionalText, secret, text } from "./variable.js"

export const redisSection = section("Redis", {
  host: text({ name: "REDIS_HOST", default: "127.0.0.1", description: "Redis host" }),
  port: integer({ name: "REDIS_PORT", min: 1, max: 65535, default: 6379, description: "Redis port" }),
  username: optionalText({ name: "REDIS_USERNAME", whenUnset: "none (the default user)", description: "ACL user name" }),
  password: secret({ name: "REDIS_PASSWORD", whenUnset: "none; required in production", description: "Redis password" }),
  db: integer({ name: "REDIS_DB", min: 0, max: 15, default: 0, description: "database number" }),
  keyPrefix: text({ name: "REDIS_KEY_PREFIX", default: "lumiku:", description: "prefix of every key this app writes (queues included)" }),
  commandTimeout: duration({ name: "REDIS_COMMAND_TIMEOUT", default: "1 second", description: "request-path commands never wait longer" })
}, (v) => v)
