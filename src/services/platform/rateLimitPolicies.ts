import type { Duration } from "effect"

/**
 * What a route does when the limiter's store (Redis) cannot answer: `local` applies the same policy
 * in this process (so at most replicas x limit pass); `closed` refuses with 503, for routes that
 * grant credits or start paid work (register, payments, generation, uploads).
 */
export type StoreFailureMode = "local" | "closed"

export interface RateLimitPolicyDefinition {
  /** Requests per window unless the configuration overrides it. */
  readonly limit: number
  /** The window, as an Effect duration text. */
  readonly window: string
  /** Decided per policy so a route cannot forget it. */
  readonly storeFailure: StoreFailureMode
  readonly description: string
}

/**
 * The rate-limit policies, defined once: the presets of the original system with their mode when
 * Redis cannot answer (closed for the policies that grant credits or start paid or expensive work:
 * register, ai, preset, upload, payment). The configuration reads an override of each
 * (layers/platform/config/rateLimits.ts) and RateLimitGuard enforces them by name.
 */
export const rateLimitPolicies = {
  health: {
    limit: 30,
    window: "1 minute",
    storeFailure: "local",
    description: "GET /health and /api/health, per client address"
  },
  login: { limit: 5, window: "15 minutes", storeFailure: "local", description: "login attempts, per client address" },
  register: { limit: 3, window: "1 hour", storeFailure: "closed", description: "registrations, per client address" },
  general: { limit: 100, window: "1 minute", storeFailure: "local", description: "every authenticated route, per user" },
  ai: { limit: 5, window: "1 minute", storeFailure: "closed", description: "starting an AI generation" },
  upload: { limit: 10, window: "1 minute", storeFailure: "closed", description: "uploads" },
  preset: { limit: 8, window: "1 minute", storeFailure: "closed", description: "using a preset" },
  projectCreate: { limit: 20, window: "1 hour", storeFailure: "local", description: "creating a project" },
  payment: { limit: 10, window: "1 minute", storeFailure: "closed", description: "starting a payment" },
  videoMixerGenerate: {
    limit: 5,
    window: "1 minute",
    storeFailure: "closed",
    description: "starting a Video Mixer generation, per user"
  }
} as const satisfies Readonly<Record<string, RateLimitPolicyDefinition>>

export type PolicyName = keyof typeof rateLimitPolicies

export const policyNames = Object.keys(rateLimitPolicies) as ReadonlyArray<PolicyName>

/** A policy's limit in effect: `limit` requests per `window`. */
export interface RateLimitSetting {
  readonly limit: number
  readonly window: Duration.Duration
}
