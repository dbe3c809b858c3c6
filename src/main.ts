import { AppLive } from "./layers/AppLive.js"
import { runMain } from "./runMain.js"

runMain(AppLive)
