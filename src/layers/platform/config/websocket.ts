import { section } from "./section.js"
import { duration, integer } from "./variable.js"

export const websocketSection = section("WebSocket", {
  authTimeout: duration({
    name: "WS_AUTH_TIMEOUT",
    default: "5 seconds",
    description: "a live-progress socket that has not sent its access token within this is closed (4408)"
  }),
  maxPendingPerClient: integer({
    name: "WS_MAX_PENDING_PER_CLIENT",
    min: 1,
    max: 100_000,
    default: 20,
    description: "sockets one client address may hold open before they authenticate; one more is refused 429 before the upgrade"
  }),
  maxPerUser: integer({
    name: "WS_MAX_SOCKETS_PER_USER",
    min: 1,
    max: 100_000,
    default: 20,
    description: "authenticated live-progress sockets per user; the one over it is closed (4429)"
  })
}, (v) => v)
