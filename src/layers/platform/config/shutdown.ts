import { section } from "./section.js"
import { duration } from "./variable.js"

export const shutdownSection = section("Shutdown", {
  drainDelay: duration({
    name: "SHUTDOWN_DRAIN_DELAY",
    default: "5 seconds",
    description: "keep serving after SIGTERM while readiness already answers 503"
  }),
  timeout: duration({
    name: "SHUTDOWN_TIMEOUT",
    default: "30 seconds",
    description: "cap on the whole shutdown; past it the process exits 1 naming the stuck stage"
  })
}, (v) => v)
