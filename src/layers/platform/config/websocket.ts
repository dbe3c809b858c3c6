import { section } from "./section.js"
import { duration } from "./variable.js"

export const websocketSection = section("WebSocket", {
  authTimeout: duration({
    name: "WS_AUTH_TIMEOUT",
    default: "5 seconds",
    description: "a live-progress socket that has not sent its access token within this is closed (4408)"
  })
}, (v) => v)
