import { AppLive } from "./AppLive.js"
import { runMain } from "./runMain.js"

runMain(AppLive)
