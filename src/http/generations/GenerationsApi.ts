import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../accounts/Authentication.js"
import { RateLimited, ServiceUnavailable } from "../platform/ApiError.js"
import { APP_ID, AppColor, AppIcon, AppListing } from "../../services/generations/AppCatalog.js"
import { GenerationFinished, GenerationNotFound, GenerationsUnavailable } from "../../services/generations/GenerationError.js"
import { GenerationStatus } from "../../services/generations/Generations.js"

/** One generation as the web app's My Work and dashboard read it (frontend-contract 2.4). */
export const GenerationItem = Schema.Struct({
  id: Schema.String,
  appId: Schema.String,
  appName: Schema.String,
  appIcon: AppIcon,
  appColor: AppColor,
  projectId: Schema.NullOr(Schema.String),
  projectName: Schema.NullOr(Schema.String),
  status: GenerationStatus,
  /** Storage keys of the outputs; the web app opens the first to download. */
  outputPaths: Schema.Array(Schema.String),
  thumbnailUrl: Schema.optional(Schema.String),
  /** Credits this generation cost in the end: charged minus refunded. */
  creditUsed: Schema.Number,
  createdAt: Schema.String,
  completedAt: Schema.optional(Schema.String),
  fileCount: Schema.Number,
  totalSize: Schema.optional(Schema.Number),
  progress: Schema.Number,
  errorMessage: Schema.optional(Schema.String)
}).annotations({ identifier: "Generation" })

const whole = (max: number) => {
  const message = { message: () => `limit must be a whole number from 1 to ${max}` }
  return Schema.compose(Schema.String.pipe(Schema.pattern(/^\d{1,3}$/, message)), Schema.NumberFromString).pipe(
    Schema.between(1, max, message)
  )
}
const Sort = Schema.Literal("latest", "oldest", "name").annotations({
  message: () => "sort must be one of latest, oldest, name"
})
const AppParam = Schema.String.pipe(Schema.pattern(APP_ID, { message: () => "app must be an app id (lowercase letters, digits, '-')" }))
const Id = Schema.UUID.annotations({ message: () => "the generation id must be a UUID" })

/** The caller's generations and the apps that make them, in the shapes the Lumiku web app reads (flat, not wrapped in data). */
export class GenerationsApi extends HttpApiGroup.make("generations")
  .add(
    HttpApiEndpoint.get("apps", "/apps")
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), apps: Schema.Array(AppListing) }))
      .annotate(OpenApi.Description, "The apps this deployment offers, in dashboard order.")
  )
  .add(
    HttpApiEndpoint.get("list", "/generations")
      .setUrlParams(Schema.Struct({
        app: Schema.optional(AppParam),
        sort: Schema.optionalWith(Sort, { default: () => "latest" as const }),
        limit: Schema.optionalWith(whole(100), { default: () => 100 })
      }))
      .addSuccess(Schema.Struct({
        success: Schema.Literal(true),
        generations: Schema.Array(GenerationItem),
        total: Schema.Number,
        hasMore: Schema.Boolean
      }))
  )
  .add(
    HttpApiEndpoint.get("recent", "/generations/recent")
      .setUrlParams(Schema.Struct({ limit: Schema.optionalWith(whole(50), { default: () => 5 }) }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), generations: Schema.Array(GenerationItem) }))
  )
  .add(
    HttpApiEndpoint.post("cancel", "/generations/:id/cancel")
      .setPath(Schema.Struct({ id: Id }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), generation: GenerationItem }))
      .addError(GenerationFinished)
      .annotate(OpenApi.Description, "Stops a pending or running generation; all it charged is refunded.")
  )
  .add(
    HttpApiEndpoint.del("remove", "/generations/:id")
      .setPath(Schema.Struct({ id: Id }))
      // The web app sends ?appId=; the id alone names the generation.
      .setUrlParams(Schema.Struct({ appId: Schema.optional(Schema.String) }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true) }))
      .annotate(OpenApi.Description, "Deletes the generation and its outputs; a running one is cancelled (and refunded) first.")
  )
  .addError(GenerationNotFound)
  .addError(GenerationsUnavailable)
  .addError(RateLimited)
  .addError(ServiceUnavailable)
  .middleware(Authentication)
  .prefix("/api")
  .annotate(OpenApi.Title, "Generations") {}
