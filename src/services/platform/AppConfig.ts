import { Context, Data, type Duration, type Option, type Redacted } from "effect"
import type { CorsPolicy } from "./CorsPolicy.js"
import type { PolicyName, RateLimitSetting } from "./rateLimitPolicies.js"
import type { RetryPolicyConfig } from "../jobs/retryPolicy.js"

export type NodeEnv = "development" | "production" | "test"
export type Role = "all" | "api" | "worker"
export type LogFormat = "json" | "pretty"
export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent"

export interface AppConfigShape {
  readonly env: NodeEnv
  readonly role: Role
  readonly version: string
  readonly http: {
    readonly host: string
    readonly port: number
    readonly bodyLimitBytes: number
    /** Proxy addresses or CIDRs whose X-Forwarded-For hop is believed. */
    readonly trustedProxies: ReadonlyArray<string>
  }
  readonly shutdown: {
    readonly drainDelay: Duration.Duration
    readonly timeout: Duration.Duration
  }
  readonly log: {
    readonly level: LogLevelName
    readonly format: LogFormat
  }
  readonly database: {
    readonly url: Redacted.Redacted<string>
    readonly poolSize: number
    readonly connectTimeout: Duration.Duration
    readonly statementTimeout: Duration.Duration
    /** Development only: create the database when it does not exist. */
    readonly createIfMissing: boolean
  }
  readonly redis: {
    readonly host: string
    readonly port: number
    readonly username: Option.Option<string>
    readonly password: Option.Option<Redacted.Redacted<string>>
    readonly db: number
    readonly keyPrefix: string
    readonly commandTimeout: Duration.Duration
  }
  readonly storage: {
    readonly dir: string
  }
  readonly uploads: {
    /** The largest accepted file of each upload kind, in bytes. */
    readonly maxBytes: { readonly video: number; readonly audio: number; readonly image: number }
    readonly maxDurationSeconds: number
    /** Each user's storage quota unless their quota row sets one. */
    readonly quotaBytes: number
    /** The body limit of the upload routes, which replaces BODY_LIMIT_BYTES there. */
    readonly requestLimitBytes: number
  }
  readonly ffmpeg: {
    readonly ffmpegPath: Option.Option<string>
    readonly ffprobePath: Option.Option<string>
    /** FFMPEG_BUNDLED: fall back to the npm-bundled builds when neither variable nor PATH has a binary. */
    readonly bundled: boolean
    readonly timeout: Duration.Duration
  }
  readonly auth: {
    readonly jwtSecret: Redacted.Redacted<string>
    /** True when no JWT_SECRET was set and one was generated for this process. */
    readonly jwtSecretGenerated: boolean
    /** Lifetime of an access token (the web app keeps one token and has no refresh flow). */
    readonly tokenTtl: Duration.Duration
    /** Lifetime of a session and of its rotating refresh token. */
    readonly sessionTtl: Duration.Duration
    /** Failed logins per email (and per client address) within the window before login is locked. */
    readonly lockout: {
      readonly maxFailuresPerEmail: number
      readonly maxFailuresPerAddress: number
      readonly window: Duration.Duration
    }
  }
  readonly duitku: {
    readonly merchantCode: Option.Option<Redacted.Redacted<string>>
    readonly apiKey: Option.Option<Redacted.Redacted<string>>
    readonly callbackUrl: Option.Option<string>
    readonly returnUrl: Option.Option<string>
    readonly environment: "sandbox" | "production"
    /** API base URL, without a trailing slash. */
    readonly baseUrl: string
    /** DUITKU_CALLBACK_IPS: replaces the published callback addresses of `environment`. */
    readonly callbackIps: Option.Option<ReadonlyArray<string>>
    readonly callbackIpCheck: boolean
    /** Confirm a paid callback with the transaction status API before granting; reconcile with it. */
    readonly verifyStatus: boolean
    readonly timeout: Duration.Duration
    readonly paymentMethod: string
    readonly expiryMinutes: number
    /** Unexpired pending payments one user may have at once. */
    readonly maxPending: number
    readonly reconcileInterval: Duration.Duration
  }
  readonly cors: {
    /** CORS_ORIGIN entries in canonical form. */
    readonly origins: ReadonlyArray<string>
    /** Built from CORS_ORIGIN, CORS_WILDCARD_DEPTH, CORS_METHODS and CORS_HEADERS. */
    readonly policy: CorsPolicy
  }
  /** The limit in effect of each policy of rateLimitPolicies.ts, from RATE_LIMIT_<POLICY>="<n> per <duration>". */
  readonly rateLimits: Readonly<Record<PolicyName, RateLimitSetting>>
  readonly health: {
    readonly checkTimeout: Duration.Duration
    readonly detailedTimeout: Duration.Duration
    readonly readinessCacheTtl: Duration.Duration
    readonly rateLimitPerMinute: number
    readonly memoryLimitBytes: number
  }
  readonly jobs: RetryPolicyConfig & {
    readonly stalledInterval: Duration.Duration
    readonly lockDuration: Duration.Duration
    readonly keepCompleted: { readonly count: number; readonly age: Duration.Duration }
    readonly keepFailed: { readonly count: number; readonly age: Duration.Duration }
    /** A compensation's own time limit per run, and how many runs it gets (retried with the transient backoff). */
    readonly compensation: { readonly timeout: Duration.Duration; readonly attempts: number }
    /** Per-queue worker concurrency overrides, from JOB_CONCURRENCY="queue=n,...". */
    readonly concurrency: Readonly<Record<string, number>>
  }
  readonly websocket: {
    /** How long a live-progress socket may stay open without authenticating. */
    readonly authTimeout: Duration.Duration
    /** Sockets one client address may hold open before they authenticate. */
    readonly maxPendingPerClient: number
    /** Authenticated sockets per user. */
    readonly maxPerUser: number
  }
  readonly videoMixer: {
    /** The most outputs (totalVideos) one generation may ask for. */
    readonly maxOutputs: number
  }
  readonly admin: {
    /** Bearer token of the admin API; the admin API answers 401 to everything without one. */
    readonly token: Option.Option<Redacted.Redacted<string>>
  }
  readonly images: {
    /** HF_TOKEN; without it image generation is not configured (the generate routes answer 503). */
    readonly token: Option.Option<Redacted.Redacted<string>>
    /** Inference API base URL, without a trailing slash. */
    readonly baseUrl: string
    readonly model: string
    readonly referenceModel: Option.Option<string>
    readonly timeout: Duration.Duration
    readonly negativePrompt: string
  }
  readonly telemetry: {
    /** Serve /metrics on its own listener on this port instead of PORT. */
    readonly metricsPort: Option.Option<number>
    /** Bearer token /metrics requires, when set. */
    readonly metricsToken: Option.Option<Redacted.Redacted<string>>
    /** OTLP/HTTP collector base URL; spans are made only when it is set. */
    readonly otlpEndpoint: Option.Option<string>
    readonly serviceName: string
    /** Whether spans are made at all (an exporter is configured). */
    readonly tracing: boolean
  }
  /** Every secret value of this configuration, for log redaction. */
  readonly secretValues: ReadonlyArray<string>
}

export class AppConfig extends Context.Tag("app/AppConfig")<AppConfig, AppConfigShape>() {}

/** The configuration cannot be used: every problem found, each naming its variable (never a secret's value). */
export class InvalidConfig extends Data.TaggedError("InvalidConfig")<{
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return `Invalid configuration (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n` +
      this.problems.map((p) => `  - ${p}`).join("\n")
  }
}
