import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { CurrentUser } from "../../services/accounts/CurrentUser.js"
import { AppCatalog, type AppCatalogShape } from "../../services/generations/AppCatalog.js"
import { type Generation, Generations } from "../../services/generations/Generations.js"
import { Api } from "../Api.js"

/** The list item of frontend-contract 2.4; an app no longer offered still shows, under its id. */
const toItem = (catalog: AppCatalogShape) => (generation: Generation) => {
  const app = catalog.get(generation.app)
  const totalSize = generation.outputs.reduce((sum, output) => sum + output.size, 0)
  return {
    id: generation.id,
    appId: generation.app,
    appName: app?.name ?? generation.app,
    appIcon: app?.icon ?? "layers",
    appColor: app?.color ?? "blue",
    projectId: generation.projectId,
    projectName: null,
    status: generation.status,
    outputPaths: generation.outputs.map((output) => output.key),
    creditUsed: generation.charged - generation.refunded,
    createdAt: generation.createdAt.toISOString(),
    ...(generation.completedAt === null ? {} : { completedAt: generation.completedAt.toISOString() }),
    fileCount: generation.outputs.length,
    ...(generation.outputs.length === 0 ? {} : { totalSize }),
    progress: generation.progress,
    ...(generation.errorMessage === null ? {} : { errorMessage: generation.errorMessage })
  }
}

export const GenerationsHandlers = HttpApiBuilder.group(Api, "generations", (handlers) =>
  Effect.gen(function*() {
    const generations = yield* Generations
    const catalog = yield* AppCatalog
    const item = toItem(catalog)
    return handlers
      .handle("apps", () =>
        Effect.succeed({
          success: true as const,
          apps: catalog.apps.map(({ job: _job, ...listing }) => listing)
        }))
      .handle("list", ({ urlParams }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const { items, total } = yield* generations.list(user.id, urlParams)
          return { success: true as const, generations: items.map(item), total, hasMore: total > items.length }
        }))
      .handle("recent", ({ urlParams }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const items = yield* generations.recent(user.id, urlParams.limit)
          return { success: true as const, generations: items.map(item) }
        }))
      .handle("cancel", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          const cancelled = yield* generations.cancel(path.id, user.id)
          return { success: true as const, generation: item(cancelled) }
        }))
      .handle("remove", ({ path }) =>
        Effect.gen(function*() {
          const user = yield* CurrentUser
          yield* generations.remove(path.id, user.id)
          return { success: true as const }
        }))
  }))
