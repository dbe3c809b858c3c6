import { randomBytes } from "node:crypto"
import { totalmem } from "node:os"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { Config, ConfigError, ConfigProvider, Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import {
  AppConfig,
  type AppConfigShape,
  InvalidConfig,
  type LogFormat,
  type LogLevelName,
  type NodeEnv,
  type Role
} from "../../services/platform/AppConfig.js"
import { checkCorsOrigins, checkHttpsUrl, checkJwtSecret, checkPaymentCredential } from "../../services/platform/productionRules.js"
import {
  DEFAULT_HEADERS,
  DEFAULT_METHODS,
  DEFAULT_ORIGINS,
  makeCorsPolicy,
  parseOriginEntries,
  parseTokens,
  plainHttpOrigins,
  type WildcardDepth
} from "../../services/platform/CorsPolicy.js"
import { parseTrustedProxies } from "../../services/platform/clientAddress.js"
import packageJson from "../../../package.json" with { type: "json" }

/** "5000" is milliseconds; anything else is an Effect duration such as "5 seconds". */
const duration = (name: string, fallback: Duration.DurationInput) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const trimmed = raw.trim()
      if (/^\d+$/.test(trimmed)) return Either.right(Duration.millis(Number(trimmed)))
      const decoded = Duration.decodeUnknown(trimmed)
      return Option.isSome(decoded)
        ? Either.right(decoded.value)
        : Either.left(ConfigError.InvalidData([], `expected milliseconds (5000) or a duration ("5 seconds")`))
    }),
    Config.withDefault(Duration.decode(fallback))
  )

const oneOf = <const A extends string>(name: string, values: ReadonlyArray<A>) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const value = raw.trim().toLowerCase()
      return (values as ReadonlyArray<string>).includes(value)
        ? Either.right(value as A)
        : Either.left(ConfigError.InvalidData([], `expected one of ${values.join(", ")}`))
    })
  )
const literal = <const A extends string>(name: string, values: ReadonlyArray<A>, fallback: A) =>
  oneOf(name, values).pipe(Config.withDefault(fallback))

const intBetween = (name: string, min: number, max: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `expected an integer from ${min} to ${max}`, validation: (n) => n >= min && n <= max })
  )
const intIn = (name: string, min: number, max: number, fallback: number) =>
  intBetween(name, min, max).pipe(Config.withDefault(fallback))

const optionalString = (name: string) =>
  Config.option(Config.string(name)).pipe(Config.map(Option.filter((s) => s.trim().length > 0)))
const optionalSecret = (name: string) =>
  Config.option(Config.redacted(name)).pipe(Config.map(Option.filter((s) => Redacted.value(s).trim().length > 0)))

/** The memory limit of this container (cgroup v2), else the machine's memory. */
const defaultMemoryLimit = (): number => {
  try {
    const raw = readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim()
    const n = Number(raw)
    if (Number.isFinite(n) && n > 0) return n
  } catch {
    // no cgroup limit readable: fall back to the machine's memory
  }
  return totalmem()
}

/** A comma list checked item by item; each problem becomes its own line naming the variable. */
const parsedList = <A>(
  name: string,
  parse: (items: ReadonlyArray<string>) => Either.Either<A, ReadonlyArray<string>>,
  fallback: A
) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) =>
      Either.mapLeft(
        parse(raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0)),
        (problems) => problems.map((p) => ConfigError.InvalidData([], p)).reduce((l, r) => ConfigError.And(l, r))
      )
    ),
    Config.withDefault(fallback)
  )

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

/** "5 per 15 minutes" */
const rateLimit = (name: string, limit: number, window: Duration.DurationInput) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const match = /^\s*(\d+)\s*(?:per|\/)\s*(.+)$/.exec(raw)
      const parsed = match === null ? Option.none() : Duration.decodeUnknown(match[2]!.trim())
      return match !== null && Option.isSome(parsed) && Number(match[1]) >= 1 && Duration.toMillis(parsed.value) >= 1000
        ? Either.right({ limit: Number(match[1]), window: parsed.value })
        : Either.left(ConfigError.InvalidData([], `expected "<n> per <duration>", such as "5 per 15 minutes"`))
    }),
    Config.withDefault({ limit, window: Duration.decode(window) })
  )

const readers = {
  env: literal<NodeEnv>("NODE_ENV", ["development", "production", "test"], "development"),
  role: literal<Role>("ROLE", ["all", "api", "worker"], "all"),
  host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0")),
  port: intIn("PORT", 0, 65535, 3000),
  bodyLimitBytes: intIn("BODY_LIMIT_BYTES", 1024, 1024 * 1024 * 1024, 1024 * 1024),
  trustedProxies: parsedList("TRUSTED_PROXIES", (items) => Either.map(parseTrustedProxies(items), () => items), [] as ReadonlyArray<string>),
  drainDelay: duration("SHUTDOWN_DRAIN_DELAY", "5 seconds"),
  shutdownTimeout: duration("SHUTDOWN_TIMEOUT", "30 seconds"),
  logLevel: Config.option(oneOf<LogLevelName>("LOG_LEVEL", ["trace", "debug", "info", "warn", "error", "fatal", "silent"])),
  logFormat: Config.option(oneOf<LogFormat>("LOG_FORMAT", ["json", "pretty"])),
  databaseUrl: Config.redacted("DATABASE_URL").pipe(
    Config.withDefault(Redacted.make("postgres://postgres@127.0.0.1:5432/lumiku"))
  ),
  dbPoolSize: intIn("DB_POOL_SIZE", 1, 200, 10),
  dbConnectTimeout: duration("DB_CONNECT_TIMEOUT", "5 seconds"),
  dbStatementTimeout: duration("DB_STATEMENT_TIMEOUT", "30 seconds"),
  redisHost: Config.string("REDIS_HOST").pipe(Config.withDefault("127.0.0.1")),
  redisPort: intIn("REDIS_PORT", 1, 65535, 6379),
  redisUsername: optionalString("REDIS_USERNAME"),
  redisPassword: optionalSecret("REDIS_PASSWORD"),
  redisDb: intIn("REDIS_DB", 0, 15, 0),
  redisKeyPrefix: Config.string("REDIS_KEY_PREFIX").pipe(Config.withDefault("lumiku:")),
  redisCommandTimeout: duration("REDIS_COMMAND_TIMEOUT", "1 second"),
  storageDir: Config.string("STORAGE_DIR").pipe(Config.withDefault("./data/storage")),
  ffmpegPath: optionalString("FFMPEG_PATH"),
  ffprobePath: optionalString("FFPROBE_PATH"),
  ffmpegBundled: Config.boolean("FFMPEG_BUNDLED").pipe(Config.withDefault(true)),
  ffmpegTimeout: duration("FFMPEG_TIMEOUT", "10 minutes"),
  jwtSecret: optionalSecret("JWT_SECRET"),
  duitkuMerchantCode: optionalSecret("DUITKU_MERCHANT_CODE"),
  duitkuApiKey: optionalSecret("DUITKU_API_KEY"),
  duitkuCallbackUrl: optionalString("DUITKU_CALLBACK_URL"),
  duitkuReturnUrl: optionalString("DUITKU_RETURN_URL"),
  corsOrigins: parsedList("CORS_ORIGIN", parseOriginEntries, DEFAULT_ORIGINS),
  corsWildcardDepth: literal<WildcardDepth>("CORS_WILDCARD_DEPTH", ["one", "any"], "one"),
  corsMethods: parsedList("CORS_METHODS", (items) => parseTokens(items, "method"), DEFAULT_METHODS),
  corsHeaders: parsedList("CORS_HEADERS", (items) => parseTokens(items, "header"), DEFAULT_HEADERS),
  healthCheckTimeout: duration("HEALTH_CHECK_TIMEOUT", "500 millis"),
  healthDetailedTimeout: duration("HEALTH_DETAILED_TIMEOUT", "250 millis"),
  readinessCacheTtl: duration("READINESS_CACHE_TTL", "1 second"),
  healthRateLimit: intIn("HEALTH_RATE_LIMIT_PER_MINUTE", 1, 100_000, 30),
  rateLimitLogin: rateLimit("RATE_LIMIT_LOGIN", 5, "15 minutes"),
  rateLimitRegister: rateLimit("RATE_LIMIT_REGISTER", 3, "1 hour"),
  rateLimitGeneral: rateLimit("RATE_LIMIT_GENERAL", 100, "1 minute"),
  rateLimitAi: rateLimit("RATE_LIMIT_AI", 5, "1 minute"),
  rateLimitUpload: rateLimit("RATE_LIMIT_UPLOAD", 10, "1 minute"),
  rateLimitPreset: rateLimit("RATE_LIMIT_PRESET", 8, "1 minute"),
  rateLimitProjectCreate: rateLimit("RATE_LIMIT_PROJECT_CREATE", 20, "1 hour"),
  rateLimitPayment: rateLimit("RATE_LIMIT_PAYMENT", 10, "1 minute"),
  memoryLimitBytes: Config.option(intBetween("MEMORY_LIMIT_BYTES", 1, Number.MAX_SAFE_INTEGER)),
  jobTransientBase: duration("JOB_TRANSIENT_BASE_DELAY", "2 seconds"),
  jobTransientAttempts: intIn("JOB_TRANSIENT_ATTEMPTS", 1, 50, 5),
  jobTransientMaxDelay: duration("JOB_TRANSIENT_MAX_DELAY", "5 minutes"),
  jobTimeoutRetryDelay: duration("JOB_TIMEOUT_RETRY_DELAY", "10 seconds"),
  jobTimeoutAttempts: intIn("JOB_TIMEOUT_ATTEMPTS", 1, 20, 3),
  jobRateLimitMaxTimes: intIn("JOB_RATE_LIMIT_MAX_TIMES", 0, 100, 5),
  jobRateLimitMinDelay: duration("JOB_RATE_LIMIT_MIN_DELAY", "1 second"),
  jobRateLimitMaxDelay: duration("JOB_RATE_LIMIT_MAX_DELAY", "10 minutes"),
  jobStalledInterval: duration("JOB_STALLED_INTERVAL", "30 seconds"),
  jobLockDuration: duration("JOB_LOCK_DURATION", "30 seconds"),
  jobKeepCompletedCount: intIn("JOB_KEEP_COMPLETED_COUNT", 0, 1_000_000, 1000),
  jobKeepCompletedAge: duration("JOB_KEEP_COMPLETED_AGE", "1 day"),
  jobKeepFailedCount: intIn("JOB_KEEP_FAILED_COUNT", 0, 1_000_000, 10_000),
  jobKeepFailedAge: duration("JOB_KEEP_FAILED_AGE", "7 days"),
  jobCompensationTimeout: duration("JOB_COMPENSATION_TIMEOUT", "30 seconds"),
  jobCompensationAttempts: intIn("JOB_COMPENSATION_ATTEMPTS", 1, 100, 10),
  jobConcurrency: Config.string("JOB_CONCURRENCY").pipe(
    Config.mapOrFail((raw) => {
      const out: Record<string, number> = {}
      for (const entry of raw.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
        const match = /^([A-Za-z0-9_-]+)=(\d+)$/.exec(entry)
        if (match === null || Number(match[2]) < 1) {
          return Either.left(ConfigError.InvalidData([], `expected queue=n pairs such as "video-mixer=2"`))
        }
        out[match[1]!] = Number(match[2])
      }
      return Either.right(out)
    }),
    Config.withDefault({} as Record<string, number>)
  ),
  adminToken: optionalSecret("ADMIN_TOKEN"),
  authTokenTtl: duration("AUTH_TOKEN_TTL", "7 days"),
  authSessionTtl: duration("AUTH_SESSION_TTL", "30 days"),
  loginMaxFailuresPerEmail: intIn("LOGIN_MAX_FAILURES_PER_EMAIL", 1, 1000, 5),
  loginMaxFailuresPerAddress: intIn("LOGIN_MAX_FAILURES_PER_ADDRESS", 1, 10_000, 20),
  loginLockoutWindow: duration("LOGIN_LOCKOUT_WINDOW", "15 minutes")
}

type Values = { [K in keyof typeof readers]: Config.Config.Success<(typeof readers)[K]> }

const secretText = (secret: Option.Option<Redacted.Redacted<string>> | undefined) =>
  secret === undefined ? undefined : Option.getOrUndefined(Option.map(secret, Redacted.value))

/** Rules for NODE_ENV=production; a variable that failed to parse is skipped (its parse error is reported). */
const productionProblems = (v: Partial<Values>): Array<string> => {
  const problems: Array<string> = []
  if (v.jwtSecret !== undefined) {
    const jwt = secretText(v.jwtSecret)
    if (jwt === undefined) problems.push("JWT_SECRET is required in production")
    else problems.push(...checkJwtSecret("JWT_SECRET", jwt))
  }
  if (v.duitkuMerchantCode !== undefined) {
    problems.push(...checkPaymentCredential("DUITKU_MERCHANT_CODE", secretText(v.duitkuMerchantCode)))
  }
  if (v.duitkuApiKey !== undefined) {
    problems.push(...checkPaymentCredential("DUITKU_API_KEY", secretText(v.duitkuApiKey), { minLength: 20 }))
  }
  if (v.duitkuCallbackUrl !== undefined) {
    problems.push(...checkHttpsUrl("DUITKU_CALLBACK_URL", Option.getOrUndefined(v.duitkuCallbackUrl)))
  }
  if (v.duitkuReturnUrl !== undefined) {
    problems.push(...checkHttpsUrl("DUITKU_RETURN_URL", Option.getOrUndefined(v.duitkuReturnUrl)))
  }
  if (v.corsOrigins !== undefined) {
    problems.push(...checkCorsOrigins("CORS_ORIGIN", v.corsOrigins.map((entry) => entry.source)))
    for (const origin of plainHttpOrigins(v.corsOrigins)) {
      problems.push(`CORS_ORIGIN entry ${JSON.stringify(origin)} uses http:// in production; only https:// (or the loopback) is allowed`)
    }
  }
  if (v.redisPassword !== undefined && secretText(v.redisPassword) === undefined) {
    problems.push("REDIS_PASSWORD is required in production")
  }
  const admin = v.adminToken === undefined ? undefined : secretText(v.adminToken)
  if (admin !== undefined && admin.length < 32) problems.push("ADMIN_TOKEN must be at least 32 characters in production")
  return problems
}

/**
 * Reads every variable once, then applies the production rules. All problems, parse errors and
 * rule violations alike, are reported together in one InvalidConfig.
 */
export const loadAppConfig: Effect.Effect<AppConfigShape, InvalidConfig> = Effect.gen(function*() {
  const entries = Object.entries(readers) as Array<[keyof Values, Config.Config<unknown>]>
  const results = yield* Effect.forEach(entries, ([, config]) => Effect.either(config))
  const problems: Array<string> = []
  const values: Record<string, unknown> = {}
  results.forEach((result, i) => {
    const [key] = entries[i]!
    if (Either.isLeft(result)) problems.push(...describeConfigError(result.left))
    else values[key] = result.right
  })
  // The production rules run even when some variables failed to parse, so one message lists all.
  const parsed = values as Partial<Values>
  if (parsed.env === "production") problems.push(...productionProblems(parsed))
  if (problems.length > 0) return yield* new InvalidConfig({ problems })
  const v = values as Values
  const production = v.env === "production"
  const redisPassword = Option.map(v.redisPassword, Redacted.value)

  const jwtSecret = Option.getOrElse(v.jwtSecret, () => Redacted.make(randomBytes(48).toString("base64url")))
  const databaseUrl = Redacted.value(v.databaseUrl)
  const databasePassword = (() => {
    try {
      return decodeURIComponent(new URL(databaseUrl).password)
    } catch {
      return ""
    }
  })()
  const secretValues = [
    Redacted.value(jwtSecret),
    ...Option.toArray(redisPassword),
    ...Option.toArray(Option.map(v.duitkuApiKey, Redacted.value)),
    ...Option.toArray(Option.map(v.duitkuMerchantCode, Redacted.value)),
    ...Option.toArray(Option.map(v.adminToken, Redacted.value)),
    databasePassword
  ].filter((s) => s.length >= 4)

  return {
    env: v.env,
    role: v.role,
    version: packageJson.version,
    http: {
      host: v.host,
      port: v.port,
      bodyLimitBytes: v.bodyLimitBytes,
      trustedProxies: v.trustedProxies
    },
    shutdown: { drainDelay: v.drainDelay, timeout: v.shutdownTimeout },
    log: {
      level: Option.getOrElse(v.logLevel, () => (v.env === "test" ? "warn" : "info") as LogLevelName),
      format: Option.getOrElse(v.logFormat, () => (production ? "json" : "pretty") as LogFormat)
    },
    database: {
      url: v.databaseUrl,
      poolSize: v.dbPoolSize,
      connectTimeout: v.dbConnectTimeout,
      statementTimeout: v.dbStatementTimeout,
      createIfMissing: !production
    },
    redis: {
      host: v.redisHost,
      port: v.redisPort,
      username: v.redisUsername,
      password: v.redisPassword,
      db: v.redisDb,
      keyPrefix: v.redisKeyPrefix,
      commandTimeout: v.redisCommandTimeout
    },
    storage: { dir: path.resolve(v.storageDir) },
    ffmpeg: { ffmpegPath: v.ffmpegPath, ffprobePath: v.ffprobePath, bundled: v.ffmpegBundled, timeout: v.ffmpegTimeout },
    auth: {
      jwtSecret,
      jwtSecretGenerated: Option.isNone(v.jwtSecret),
      tokenTtl: v.authTokenTtl,
      sessionTtl: v.authSessionTtl,
      lockout: {
        maxFailuresPerEmail: v.loginMaxFailuresPerEmail,
        maxFailuresPerAddress: v.loginMaxFailuresPerAddress,
        window: v.loginLockoutWindow
      }
    },
    duitku: {
      merchantCode: v.duitkuMerchantCode,
      apiKey: v.duitkuApiKey,
      callbackUrl: v.duitkuCallbackUrl,
      returnUrl: v.duitkuReturnUrl
    },
    cors: {
      origins: v.corsOrigins.map((entry) => entry.source),
      policy: makeCorsPolicy({
        origins: v.corsOrigins,
        wildcardDepth: v.corsWildcardDepth,
        methods: v.corsMethods,
        headers: v.corsHeaders
      })
    },
    rateLimits: {
      health: { limit: v.healthRateLimit, window: Duration.minutes(1) },
      login: v.rateLimitLogin,
      register: v.rateLimitRegister,
      general: v.rateLimitGeneral,
      ai: v.rateLimitAi,
      upload: v.rateLimitUpload,
      preset: v.rateLimitPreset,
      projectCreate: v.rateLimitProjectCreate,
      payment: v.rateLimitPayment
    },
    health: {
      checkTimeout: v.healthCheckTimeout,
      detailedTimeout: v.healthDetailedTimeout,
      readinessCacheTtl: v.readinessCacheTtl,
      rateLimitPerMinute: v.healthRateLimit,
      memoryLimitBytes: Option.getOrElse(v.memoryLimitBytes, defaultMemoryLimit)
    },
    jobs: {
      transientBase: v.jobTransientBase,
      transientAttempts: v.jobTransientAttempts,
      transientMaxDelay: v.jobTransientMaxDelay,
      timeoutRetryDelay: v.jobTimeoutRetryDelay,
      timeoutAttempts: v.jobTimeoutAttempts,
      rateLimitMaxTimes: v.jobRateLimitMaxTimes,
      rateLimitMinDelay: v.jobRateLimitMinDelay,
      rateLimitMaxDelay: v.jobRateLimitMaxDelay,
      stalledInterval: v.jobStalledInterval,
      lockDuration: v.jobLockDuration,
      keepCompleted: { count: v.jobKeepCompletedCount, age: v.jobKeepCompletedAge },
      keepFailed: { count: v.jobKeepFailedCount, age: v.jobKeepFailedAge },
      compensation: { timeout: v.jobCompensationTimeout, attempts: v.jobCompensationAttempts },
      concurrency: v.jobConcurrency
    },
    admin: { token: v.adminToken },
    secretValues
  } satisfies AppConfigShape
})

/** Reads and validates the environment once at startup; holds no resource. */
export const AppConfigLive = Layer.effect(AppConfig, loadAppConfig)

/** A configuration for tests: the development defaults plus the given overrides. */
export const appConfigFrom = (env: Record<string, string>) =>
  loadAppConfig.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
