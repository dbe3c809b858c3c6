import { HttpApiBuilder, HttpApp, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { type DeadLetterBusy, type DeadLetterNotFound, JobQueues, type JobQueueUnavailable, type UnknownQueue } from "../../services/jobs/JobQueues.js"
import { Conflict, NotFound, ServiceUnavailable } from "../platform/ApiError.js"
import { Api } from "../Api.js"

const notFound = (error: UnknownQueue | DeadLetterNotFound) => Effect.fail(new NotFound({ message: error.message }))

// Another call is handling the dead letter, its compensation is still to run, or a worker holds its job.
const busy = (error: DeadLetterBusy) => Effect.fail(new Conflict({ message: error.message }))

// The cause (connection details) is logged, never answered.
const unavailable = (error: JobQueueUnavailable) =>
  Effect.logWarning("admin API: job queue unavailable", { queue: error.queue, cause: String(error.cause) }).pipe(
    Effect.zipRight(Effect.fail(new ServiceUnavailable({ message: "The job queues are unavailable; try again later" })))
  )

export const AdminHandlers = HttpApiBuilder.group(Api, "admin", (handlers) =>
  Effect.gen(function*() {
    const queues = yield* JobQueues

    return handlers
      .handle(
        "queues",
        Effect.fn("Admin.queues")(function*() {
          const counts = yield* queues.counts.pipe(Effect.catchTags({ JobQueueUnavailable: unavailable }))
          return { queues: Object.entries(counts).map(([name, c]) => ({ name, counts: c })) }
        })
      )
      .handle(
        "listDeadLetters",
        Effect.fn("Admin.listDeadLetters")(function*({ path, urlParams }) {
          const page = yield* queues.deadLetters.list(path.queue, urlParams).pipe(
            Effect.catchTags({ JobQueueUnavailable: unavailable, UnknownQueue: notFound })
          )
          yield* HttpApp.appendPreResponseHandler((_, response) =>
            Effect.succeed(HttpServerResponse.setHeader(response, "x-total-count", String(page.total)))
          )
          return { items: page.items, total: page.total, offset: urlParams.offset, limit: urlParams.limit }
        })
      )
      .handle(
        "getDeadLetter",
        Effect.fn("Admin.getDeadLetter")(function*({ path }) {
          return yield* queues.deadLetters.get(path.queue, path.jobId).pipe(
            Effect.catchTags({ JobQueueUnavailable: unavailable, UnknownQueue: notFound, DeadLetterNotFound: notFound })
          )
        })
      )
      .handle(
        "retryDeadLetter",
        Effect.fn("Admin.retryDeadLetter")(function*({ path }) {
          yield* queues.deadLetters.retry(path.queue, path.jobId).pipe(
            Effect.catchTags({ JobQueueUnavailable: unavailable, UnknownQueue: notFound, DeadLetterNotFound: notFound, DeadLetterBusy: busy })
          )
          return { jobId: path.jobId, queue: path.queue, status: "re-enqueued" as const }
        })
      )
      .handle(
        "discardDeadLetter",
        Effect.fn("Admin.discardDeadLetter")(function*({ path }) {
          yield* queues.deadLetters.discard(path.queue, path.jobId).pipe(
            Effect.catchTags({ JobQueueUnavailable: unavailable, UnknownQueue: notFound, DeadLetterNotFound: notFound, DeadLetterBusy: busy })
          )
        })
      )
  }))
