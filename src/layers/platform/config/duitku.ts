import { section } from "./section.js"
import { optionalText, secret } from "./variable.js"

export const duitkuSection = section("Payments (Duitku)", {
  merchantCode: secret({
    name: "DUITKU_MERCHANT_CODE",
    whenUnset: "none; required in production",
    description: "merchant code; in production no test/sandbox/demo/example/change/replace/your-/12345"
  }),
  apiKey: secret({
    name: "DUITKU_API_KEY",
    whenUnset: "none; required in production",
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
  })
}, (v) => v)
