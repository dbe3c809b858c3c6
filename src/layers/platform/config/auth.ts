import { randomBytes } from "node:crypto"
import { Option, Redacted } from "effect"
import { section } from "./section.js"
import { duration, integer, secret } from "./variable.js"

export const authSection = section("Authentication", {
  jwtSecret: secret({
    name: "JWT_SECRET",
    whenUnset: "generated per process (development); required in production",
    description: "signs access tokens; in production at least 32 characters, 3.5 bits/char of entropy, no placeholder words"
  }),
  tokenTtl: duration({
    name: "AUTH_TOKEN_TTL",
    default: "7 days",
    description: "access token lifetime (the web app keeps one token and has no refresh flow)"
  }),
  sessionTtl: duration({ name: "AUTH_SESSION_TTL", default: "30 days", description: "session and rotating refresh token lifetime" }),
  maxFailuresPerEmail: integer({
    name: "LOGIN_MAX_FAILURES_PER_EMAIL",
    min: 1,
    max: 1000,
    default: 5,
    description: "failed logins per email within the window before it is locked (429 ACCOUNT_LOCKED)"
  }),
  maxFailuresPerAddress: integer({
    name: "LOGIN_MAX_FAILURES_PER_ADDRESS",
    min: 1,
    max: 10_000,
    default: 20,
    description: "failed logins per client address within the window before it is locked"
  }),
  lockoutWindow: duration({ name: "LOGIN_LOCKOUT_WINDOW", default: "15 minutes", description: "window of the failed-login counts" })
}, (v) => ({
  jwtSecret: Option.getOrElse(v.jwtSecret, () => Redacted.make(randomBytes(48).toString("base64url"))),
  jwtSecretGenerated: Option.isNone(v.jwtSecret),
  tokenTtl: v.tokenTtl,
  sessionTtl: v.sessionTtl,
  lockout: {
    maxFailuresPerEmail: v.maxFailuresPerEmail,
    maxFailuresPerAddress: v.maxFailuresPerAddress,
    window: v.lockoutWindow
  }
}))
