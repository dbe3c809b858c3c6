import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Conflict, NotFound, ServiceUnavailable } from "../platform/ApiError.js"
import { DeadLetter, QueueCounts } from "../../services/jobs/JobQueues.js"
import { JOB_ID, QUEUE_NAME } from "../../services/jobs/queueNames.js"
import { AdminAuth } from "../platform/AdminAuth.js"

export const QueueName = Schema.String.pipe(
  Schema.pattern(QUEUE_NAME, { message: () => "a queue name is 1-64 letters, digits, '-' or '_'" })
)

export const JobId = Schema.String.pipe(
  Schema.pattern(JOB_ID, { message: () => "a job id is 1-128 letters, digits, '.', '-' or '_', not digits only" })
)

/** A query parameter of plain decimal digits (no sign, exponent, hex or whitespace). */
const wholeNumber = (name: string) =>
  Schema.compose(
    Schema.String.pipe(Schema.pattern(/^\d{1,9}$/, { message: () => `${name} must be a whole number` })),
    Schema.NumberFromString
  )

export const DeadLetterPage = Schema.Struct({
  offset: Schema.optionalWith(
    wholeNumber("offset").annotations({ description: "Dead letters to skip, oldest first (default 0)" }),
    { default: () => 0 }
  ),
  limit: Schema.optionalWith(
    wholeNumber("limit").pipe(
      Schema.between(1, 100, { message: () => "limit must be from 1 to 100" }),
      Schema.annotations({ description: "Page size, 1-100 (default 20)" })
    ),
    { default: () => 20 }
  )
})

export const QueueList = Schema.Struct({
  queues: Schema.Array(Schema.Struct({ name: Schema.String, counts: QueueCounts }))
}).annotations({ identifier: "QueueList" })

export const DeadLetterView = DeadLetter

export const DeadLetterList = Schema.Struct({
  items: Schema.Array(DeadLetterView),
  total: Schema.Number,
  offset: Schema.Number,
  limit: Schema.Number
}).annotations({ identifier: "DeadLetterList" })

export const Reenqueued = Schema.Struct({
  jobId: Schema.String,
  queue: Schema.String,
  status: Schema.Literal("re-enqueued")
}).annotations({ identifier: "Reenqueued" })

const QueuePath = Schema.Struct({ queue: QueueName })
const LetterPath = Schema.Struct({ queue: QueueName, jobId: JobId })

/** Job queues and their dead letters; every call needs the admin bearer token. */
export class AdminApi extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.get("queues", "/queues")
      .addSuccess(QueueList)
      .annotate(OpenApi.Description, "Every job queue with its job counts, dead letters included.")
  )
  .add(
    HttpApiEndpoint.get("listDeadLetters", "/queues/:queue/dead-letters")
      .setPath(QueuePath)
      .setUrlParams(DeadLetterPage)
      .addSuccess(DeadLetterList)
      .addError(NotFound)
      .annotate(OpenApi.Description, "A page of the queue's dead letters, oldest first; the total is also in X-Total-Count.")
  )
  .add(
    HttpApiEndpoint.get("getDeadLetter", "/queues/:queue/dead-letters/:jobId")
      .setPath(LetterPath)
      .addSuccess(DeadLetterView)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.post("retryDeadLetter", "/queues/:queue/dead-letters/:jobId/retry")
      .setPath(LetterPath)
      .addSuccess(Reenqueued, { status: 202 })
      .addError(NotFound)
      .addError(Conflict)
      .annotate(
        OpenApi.Description,
        "Re-enqueues the job under the same id with a fresh attempt budget and removes the dead letter. 409 while another call handles it, its compensation has not finished, or a worker holds its job."
      )
  )
  .add(
    HttpApiEndpoint.del("discardDeadLetter", "/queues/:queue/dead-letters/:jobId")
      .setPath(LetterPath)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(NotFound)
      .addError(Conflict)
      .annotate(OpenApi.Description, "Removes the dead letter. 409 while another call handles it or its compensation has not finished.")
  )
  .addError(ServiceUnavailable)
  .middleware(AdminAuth)
  .prefix("/api/admin")
  .annotate(OpenApi.Title, "Admin") {}
