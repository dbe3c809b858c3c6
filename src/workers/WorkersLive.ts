import { Layer } from "effect"
import { type AnyJobHandler, makeJobWorker } from "./runtime.js"

/** One BullMQ worker per handler; siblings start and stop together. */
export const makeWorkersLive = (handlers: ReadonlyArray<AnyJobHandler>) =>
  Layer.mergeAll(Layer.empty, ...handlers.map((handler) => makeJobWorker(handler)))
