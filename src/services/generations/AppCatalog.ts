import { Context, Layer, Schema } from "effect"
import type { JobDefinition } from "../jobs/JobDefinition.js"

/** The icon keys the web app draws (frontend-contract 2.4). */
export const AppIcon = Schema.Literal(
  "file-text",
  "bar-chart-3",
  "calendar",
  "message-square",
  "folder-open",
  "video",
  "film",
  "layers",
  "user-circle",
  "eraser"
)
export const AppColor = Schema.Literal("blue", "green", "purple", "orange", "red")

/** An app as the dashboard lists it (`GET /api/apps`), in the web app's flat shape. */
export const AppListing = Schema.Struct({
  appId: Schema.String,
  name: Schema.String,
  description: Schema.String,
  icon: AppIcon,
  color: AppColor,
  order: Schema.Number,
  beta: Schema.Boolean,
  comingSoon: Schema.Boolean
}).annotations({ identifier: "App" })
export type AppListing = typeof AppListing.Type

/** What every generation job carries: the row holds the rest (settings, seed, units); the user is whose progress channel it reports on. */
export const GenerationJobPayload = Schema.Struct({ generationId: Schema.UUID, userId: Schema.UUID })
export type GenerationJobPayload = typeof GenerationJobPayload.Type

/** An app that produces generations: its listing, and the job kind that renders them. */
export interface GenerationApp extends AppListing {
  readonly job: JobDefinition<GenerationJobPayload, typeof GenerationJobPayload.Encoded>
}

export const APP_ID = /^[a-z0-9][a-z0-9-]{0,63}$/

/** Every app this deployment offers; each app adds itself to the list composed in src/AppLive.ts. */
export interface AppCatalogShape {
  /** In dashboard order. */
  readonly apps: ReadonlyArray<GenerationApp>
  readonly get: (appId: string) => GenerationApp | undefined
}

export class AppCatalog extends Context.Tag("app/AppCatalog")<AppCatalog, AppCatalogShape>() {
  /** The catalog of `apps`; dies at startup on a bad or repeated app id (a programming error). */
  static readonly layer = (apps: ReadonlyArray<GenerationApp>) =>
    Layer.sync(AppCatalog, () => {
      const byId = new Map<string, GenerationApp>()
      for (const app of apps) {
        if (!APP_ID.test(app.appId)) throw new Error(`app id "${app.appId}" must be lowercase letters, digits and '-'`)
        if (byId.has(app.appId)) throw new Error(`app "${app.appId}" is registered twice`)
        byId.set(app.appId, app)
      }
      const sorted = [...apps].sort((a, b) => a.order - b.order || a.appId.localeCompare(b.appId))
      return AppCatalog.of({ apps: sorted, get: (appId) => byId.get(appId) })
    })
}
