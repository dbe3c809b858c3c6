import { readFileSync } from "node:fs"
import { totalmem } from "node:os"
import { Option } from "effect"
import { section } from "./section.js"
import { duration, optionalInteger } from "./variable.js"

/** The memory limit of this container (cgroup v2), else the machine's memory. */
const defaultMemoryLimit = (): number => {
  try {
    const raw = readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim()
    const n = Number(raw)
    if (Number.isFinite(n) && n > 0) return n
  } catch {
    // no cgroup limit readable: fall back to the machine's memory
  }
  return totalmem()
}

/** The health routes' own rate limit is the `health` policy, read in rateLimits.ts. */
export const healthSection = section("Health", {
  checkTimeout: duration({ name: "HEALTH_CHECK_TIMEOUT", default: "500 millis", description: "per readiness check (Postgres, Redis)" }),
  detailedTimeout: duration({
    name: "HEALTH_DETAILED_TIMEOUT",
    default: "250 millis",
    description: "per check of the detailed report (the report answers within 300 ms)"
  }),
  readinessCacheTtl: duration({ name: "READINESS_CACHE_TTL", default: "1 second", description: "how long a readiness answer is reused" }),
  memoryLimitBytes: optionalInteger({
    name: "MEMORY_LIMIT_BYTES",
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    whenUnset: "the container's cgroup limit, else the machine's memory",
    description: "the memory limit the detailed health report compares usage with"
  })
}, (v) => ({
  checkTimeout: v.checkTimeout,
  detailedTimeout: v.detailedTimeout,
  readinessCacheTtl: v.readinessCacheTtl,
  memoryLimitBytes: Option.getOrElse(v.memoryLimitBytes, defaultMemoryLimit)
}))
