import { Layer } from "effect"
import { makeCompensationWorker } from "./compensation.js"
import { type AnyJobHandler, makeJobWorker } from "./runtime.js"

/** One BullMQ worker per handler, plus one for its compensations when it has any; siblings start and stop together. */
export const makeWorkersLive = (handlers: ReadonlyArray<AnyJobHandler>) =>
  Layer.mergeAll(
    Layer.empty,
    ...handlers.flatMap((handler) =>
      handler.compensate === undefined ? [makeJobWorker(handler)] : [makeJobWorker(handler), makeCompensationWorker(handler)]
    )
  )
