import { Either } from "effect"
import { section } from "./section.js"
import { duration, optionalParsed, parsed, secret, text } from "./variable.js"

const parseHttpUrl = (raw: string): Either.Either<string, ReadonlyArray<string>> => {
  try {
    const url = new URL(raw.trim())
    if (url.protocol === "https:" || url.protocol === "http:") return Either.right(url.toString().replace(/\/$/, ""))
  } catch {
    // reported below
  }
  return Either.left(["expected an http(s):// URL"])
}

/** A Hugging Face model id: `owner/name`, each part of the Hub's own characters. */
const MODEL = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/
const parseModel = (raw: string): Either.Either<string, ReadonlyArray<string>> =>
  MODEL.test(raw.trim()) ? Either.right(raw.trim()) : Either.left(["expected a model id such as owner/name"])

export const imagesSection = section("Image generation (Hugging Face)", {
  token: secret({
    name: "HF_TOKEN",
    whenUnset: "none: the AI generate routes answer 503 (uploads, projects and presets still work)",
    description: "Hugging Face access token of the Inference API; never logged"
  }),
  baseUrl: parsed({
    name: "HF_BASE_URL",
    default: "https://router.huggingface.co/hf-inference",
    accepts: "URL",
    description: "Inference API base URL; a model is POSTed at <base>/models/<model>",
    parse: parseHttpUrl
  }),
  model: parsed({
    name: "HF_MODEL",
    default: "black-forest-labs/FLUX.1-dev",
    accepts: "owner/name",
    description: "text-to-image model of the avatar generations",
    parse: parseModel
  }),
  referenceModel: optionalParsed({
    name: "HF_REFERENCE_MODEL",
    accepts: "owner/name",
    whenUnset: "none: generating from a reference image answers 503",
    description: "image-to-image model for generations from a reference avatar",
    parse: parseModel
  }),
  timeout: duration({
    name: "HF_TIMEOUT",
    default: "2 minutes",
    description: "per call to the Inference API; past it the attempt fails as a timeout and is retried"
  }),
  negativePrompt: text({
    name: "HF_NEGATIVE_PROMPT",
    default: "blurry, low quality, distorted, deformed, extra limbs, watermark, text",
    description: "negative prompt sent with every avatar generation"
  })
}, (v) => v)
