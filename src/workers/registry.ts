import type { AnyJobDefinition } from "../services/jobs/JobDefinition.js"
import type { AnyJobHandler } from "./jobs/runtime.js"

/**
 * Every job kind the platform runs: each app adds its handler here (its definition comes with it).
 * The media apps arrive with their own issues; until then the platform runs no job kinds of its own.
 */
export const jobHandlers: ReadonlyArray<AnyJobHandler> = []

export const jobDefinitions = (handlers: ReadonlyArray<AnyJobHandler>): ReadonlyArray<AnyJobDefinition> =>
  handlers.map((handler) => handler.definition)
