import { ConfigError, ConfigProvider, Effect, Either, Layer, Option, Redacted } from "effect"
import { AppConfig, type AppConfigShape, InvalidConfig } from "../../services/platform/AppConfig.js"
import { plainHttpOrigins } from "../../services/platform/CorsPolicy.js"
import { checkCorsOrigins, checkHttpsUrl, checkJwtSecret, checkPaymentCredential } from "../../services/platform/productionRules.js"
import type { SectionVariables, Values } from "./config/section.js"
import { sections } from "./config/sections.js"
import packageJson from "../../../package.json" with { type: "json" }

type Sections = typeof sections
type SectionValues = { readonly [K in keyof Sections]: Values<Sections[K]["variables"]> }

/** Turns Effect's ConfigError tree into one line per variable. */
const describeConfigError = (error: ConfigError.ConfigError): Array<string> =>
  ConfigError.reduceWithContext(error, undefined, {
    andCase: (_, l: Array<string>, r: Array<string>) => [...l, ...r],
    orCase: (_, l: Array<string>, r: Array<string>) => [...l, ...r],
    invalidDataCase: (_, p, message) => [`${p.join(".")}: ${message}`],
    missingDataCase: (_, p, message) => [`${p.join(".")}: ${message}`],
    sourceUnavailableCase: (_, p, message) => [`${p.join(".")}: ${message}`],
    unsupportedCase: (_, p, message) => [`${p.join(".")}: ${message}`]
  })

const secretText = (secret: Option.Option<Redacted.Redacted<string>> | undefined) =>
  secret === undefined ? undefined : Option.getOrUndefined(Option.map(secret, Redacted.value))

/** Values by section; a variable that failed to parse is missing from its section. */
type PartialValues = { readonly [K in keyof Sections]: Partial<SectionValues[K]> }

/** Rules for NODE_ENV=production; a variable that failed to parse is skipped (its parse error is reported). */
const productionProblems = (v: PartialValues): Array<string> => {
  const problems: Array<string> = []
  if (v.auth.jwtSecret !== undefined) {
    const jwt = secretText(v.auth.jwtSecret)
    if (jwt === undefined) problems.push("JWT_SECRET is required in production")
    else problems.push(...checkJwtSecret("JWT_SECRET", jwt))
  }
  if (v.duitku.merchantCode !== undefined) {
    problems.push(...checkPaymentCredential("DUITKU_MERCHANT_CODE", secretText(v.duitku.merchantCode)))
  }
  if (v.duitku.apiKey !== undefined) {
    problems.push(...checkPaymentCredential("DUITKU_API_KEY", secretText(v.duitku.apiKey), { minLength: 20 }))
  }
  if (v.duitku.callbackUrl !== undefined) {
    problems.push(...checkHttpsUrl("DUITKU_CALLBACK_URL", Option.getOrUndefined(v.duitku.callbackUrl)))
  }
  if (v.duitku.returnUrl !== undefined) {
    problems.push(...checkHttpsUrl("DUITKU_RETURN_URL", Option.getOrUndefined(v.duitku.returnUrl)))
  }
  if (v.duitku.callbackIpCheck === false) {
    problems.push("DUITKU_CALLBACK_IP_CHECK=false is not allowed in production")
  }
  if (v.cors.origins !== undefined) {
    problems.push(...checkCorsOrigins("CORS_ORIGIN", v.cors.origins.map((entry) => entry.source)))
    for (const origin of plainHttpOrigins(v.cors.origins)) {
      problems.push(`CORS_ORIGIN entry ${JSON.stringify(origin)} uses http:// in production; only https:// (or the loopback) is allowed`)
    }
  }
  if (v.redis.password !== undefined && secretText(v.redis.password) === undefined) {
    problems.push("REDIS_PASSWORD is required in production")
  }
  const admin = v.admin.token === undefined ? undefined : secretText(v.admin.token)
  if (admin !== undefined && admin.length < 32) problems.push("ADMIN_TOKEN must be at least 32 characters in production")
  if (v.telemetry.metricsToken !== undefined && v.telemetry.metricsPort !== undefined) {
    const token = secretText(v.telemetry.metricsToken)
    if (token === undefined && Option.isNone(v.telemetry.metricsPort)) {
      problems.push("METRICS_TOKEN is required in production while /metrics is served on PORT (or set METRICS_PORT)")
    }
    if (token !== undefined && token.length < 32) problems.push("METRICS_TOKEN must be at least 32 characters in production")
  }
  return problems
}

/** The password inside DATABASE_URL, if any. */
const databasePassword = (url: string): string => {
  try {
    return decodeURIComponent(new URL(url).password)
  } catch {
    return ""
  }
}

/**
 * Reads every variable of every section once, then applies the production rules. All problems,
 * parse errors and rule violations alike, are reported together in one InvalidConfig.
 */
export const loadAppConfig: Effect.Effect<AppConfigShape, InvalidConfig> = Effect.gen(function*() {
  const problems: Array<string> = []
  const values: Record<string, Record<string, unknown>> = {}
  for (const [sectionKey, section] of Object.entries(sections) as Array<[string, SectionVariables]>) {
    const read: Record<string, unknown> = {}
    for (const [key, variable] of Object.entries(section.variables)) {
      const result = yield* Effect.either(variable.config)
      if (Either.isLeft(result)) problems.push(...describeConfigError(result.left))
      else read[key] = result.right
    }
    values[sectionKey] = read
  }
  // The production rules run even when some variables failed to parse, so one message lists all.
  const parsed = values as unknown as PartialValues
  if (parsed.process.env === "production") problems.push(...productionProblems(parsed))
  if (problems.length > 0) return yield* new InvalidConfig({ problems })
  // Every variable parsed: each section's values are complete.
  const v = values as unknown as SectionValues
  const context = { env: v.process.env }
  const auth = sections.auth.build(v.auth, context)
  const rateLimits = sections.rateLimits.build(v.rateLimits, context)
  const secretValues = [
    Redacted.value(auth.jwtSecret),
    ...[v.redis.password, v.duitku.apiKey, v.duitku.merchantCode, v.admin.token, v.images.token, v.telemetry.metricsToken].flatMap((secret) =>
      Option.toArray(Option.map(secret, Redacted.value))
    ),
    databasePassword(Redacted.value(v.database.url))
  ].filter((s) => s.length >= 4)

  return {
    ...sections.process.build(v.process, context),
    version: packageJson.version,
    http: sections.http.build(v.http, context),
    shutdown: sections.shutdown.build(v.shutdown, context),
    log: sections.log.build(v.log, context),
    database: sections.database.build(v.database, context),
    redis: sections.redis.build(v.redis, context),
    storage: sections.storage.build(v.storage, context),
    uploads: sections.uploads.build(v.uploads, context),
    ffmpeg: sections.ffmpeg.build(v.ffmpeg, context),
    auth,
    duitku: sections.duitku.build(v.duitku, context),
    cors: sections.cors.build(v.cors, context),
    rateLimits,
    health: { ...sections.health.build(v.health, context), rateLimitPerMinute: rateLimits.health.limit },
    jobs: sections.jobs.build(v.jobs, context),
    admin: sections.admin.build(v.admin, context),
    websocket: sections.websocket.build(v.websocket, context),
    videoMixer: sections.videoMixer.build(v.videoMixer, context),
    images: sections.images.build(v.images, context),
    telemetry: sections.telemetry.build(v.telemetry, context),
    secretValues
  } satisfies AppConfigShape
})

/** Reads and validates the environment once at startup; holds no resource. */
export const AppConfigLive = Layer.effect(AppConfig, loadAppConfig)

/** A configuration for tests: the development defaults plus the given overrides. */
export const appConfigFrom = (env: Record<string, string>) =>
  loadAppConfig.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
