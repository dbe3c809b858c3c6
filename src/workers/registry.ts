import type { AnyJobDefinition } from "../services/jobs/JobDefinition.js"
import type { AnyJobHandler } from "./jobs/runtime.js"
import { avatarGenerationHandler } from "./avatarCreator/avatarGeneration.js"
import { loopingFlowHandler } from "./loopingFlow/loopingHandler.js"
import { paymentMaintenanceHandler } from "./payments/maintenance.js"
import { videoMixerHandler } from "./videoMixer/videoMixerHandler.js"

/**
 * Every job kind the platform runs: each app adds its handler here (its definition comes with it).
 */
export const jobHandlers: ReadonlyArray<AnyJobHandler> = [
  paymentMaintenanceHandler,
  videoMixerHandler,
  avatarGenerationHandler,
  loopingFlowHandler
]

export const jobDefinitions = (handlers: ReadonlyArray<AnyJobHandler>): ReadonlyArray<AnyJobDefinition> =>
  handlers.map((handler) => handler.definition)
