import { isIP } from "node:net"
import { Either, Option } from "effect"
import { duitkuBaseUrls } from "../../../services/payments/duitkuFacts.js"
import { section } from "./section.js"
import { boolean, duration, integer, list, optionalOneOf, optionalParsed, optionalText, secret, text } from "./variable.js"

const parseHttpUrl = (raw: string): Either.Either<string, ReadonlyArray<string>> => {
  try {
    const url = new URL(raw.trim())
    if (url.protocol === "https:" || url.protocol === "http:") return Either.right(url.toString().replace(/\/$/, ""))
  } catch {
    // reported below
  }
  return Either.left(["expected an http(s):// URL"])
}

export const duitkuSection = section("Payments (Duitku)", {
  merchantCode: secret({
    name: "DUITKU_MERCHANT_CODE",
    whenUnset: "none; required in production (without it the payment routes answer 503)",
    description: "merchant code; in production no test/sandbox/demo/example/change/replace/your-/12345"
  }),
  apiKey: secret({
    name: "DUITKU_API_KEY",
    whenUnset: "none; required in production (without it the payment routes answer 503)",
    description: "API key; in production as above, and at least 20 characters"
  }),
  callbackUrl: optionalText({
    name: "DUITKU_CALLBACK_URL",
    accepts: "URL",
    whenUnset: "none; required in production",
    description: "where Duitku reports payments; https:// only in production"
  }),
  returnUrl: optionalText({
    name: "DUITKU_RETURN_URL",
    accepts: "URL",
    whenUnset: "none; required in production",
    description: "where Duitku sends the buyer back; https:// only in production"
  }),
  environment: optionalOneOf({
    name: "DUITKU_ENV",
    values: ["sandbox", "production"],
    whenUnset: "production when NODE_ENV=production, else sandbox",
    description: "which Duitku environment: its API base URL and its callback addresses"
  }),
  baseUrl: optionalParsed({
    name: "DUITKU_BASE_URL",
    accepts: "URL",
    whenUnset: "https://passport.duitku.com (production), https://sandbox.duitku.com (sandbox)",
    description: "Duitku API base URL",
    parse: parseHttpUrl
  }),
  callbackIps: list({
    name: "DUITKU_CALLBACK_IPS",
    default: "",
    accepts: "comma list of IPs",
    description: "replaces Duitku's published callback addresses of DUITKU_ENV",
    parse: (items) => {
      const bad = items.filter((item) => isIP(item) === 0)
      return bad.length === 0
        ? Either.right(items.length === 0 ? Option.none<ReadonlyArray<string>>() : Option.some<ReadonlyArray<string>>(items))
        : Either.left(bad.map((item) => `entry ${JSON.stringify(item.slice(0, 100))} is not an IP address`))
    }
  }),
  callbackIpCheck: boolean({
    name: "DUITKU_CALLBACK_IP_CHECK",
    default: true,
    description: "refuse callbacks from other addresses (403); false is refused in production"
  }),
  verifyStatus: boolean({
    name: "DUITKU_VERIFY_STATUS",
    default: true,
    description: "confirm a paid callback with Duitku's transaction status API before granting; the expiry job reconciles with it too"
  }),
  timeout: duration({ name: "DUITKU_TIMEOUT", default: "10 seconds", description: "per call to the Duitku API; past it the call is a 502" }),
  paymentMethod: text({ name: "DUITKU_PAYMENT_METHOD", default: "VC", description: "Duitku payment method code sent with each inquiry" }),
  expiryMinutes: integer({
    name: "DUITKU_EXPIRY_MINUTES",
    min: 1,
    max: 10080,
    default: 1440,
    description: "expiryPeriod of each payment; a pending payment expires after it (plus a 10 minute grace)"
  }),
  maxPending: integer({
    name: "PAYMENT_MAX_PENDING",
    min: 1,
    max: 100,
    default: 5,
    description: "unexpired pending payments one user may have at once"
  }),
  reconcileInterval: duration({
    name: "PAYMENT_RECONCILE_INTERVAL",
    default: "5 minutes",
    description: "how often the payments job expires and reconciles pending payments"
  })
}, (v, context) => {
  const environment = Option.getOrElse(v.environment, () => context.env === "production" ? "production" as const : "sandbox" as const)
  return {
    ...v,
    environment,
    baseUrl: Option.getOrElse(v.baseUrl, () => duitkuBaseUrls[environment])
  }
})
