import { Duration, Effect, Exit, Layer } from "effect"
import sharp from "sharp"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { HuggingFaceImageGeneratorLive } from "../../src/layers/images/HuggingFaceImageGenerator.js"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { type GeneratedImage, ImageGenerator } from "../../src/services/images/ImageGenerator.js"
import { readImageHeader, reencodeImage } from "../../src/services/images/imageFiles.js"
import type { JobError } from "../../src/services/jobs/JobError.js"
import { JobTransient } from "../../src/services/jobs/JobError.js"
import { decide, defaultRetryPolicy } from "../../src/services/jobs/retryPolicy.js"
import { makeRedactor } from "../../src/services/platform/redact.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"
import { type HfDouble, startHfDouble } from "./hfDouble.js"
import { pngHeader } from "./pictures.js"

const generatorWith = async (env: Record<string, string>) => {
  const config = await Effect.runPromise(appConfigFrom(env))
  return Effect.runPromise(Effect.provide(ImageGenerator, HuggingFaceImageGeneratorLive.pipe(Layer.provide(Layer.succeed(AppConfig, config)))))
}

const request = { prompt: "a portrait of a friendly person", width: 512, height: 512, seed: 7 }

describe("the Hugging Face image generator, against a local double of the Inference API", () => {
  let double: HfDouble
  let generate: () => Promise<Exit.Exit<GeneratedImage, JobError>>
  beforeAll(async () => {
    double = await startHfDouble()
    const generator = await generatorWith({
      HF_TOKEN: double.token,
      HF_BASE_URL: double.baseUrl,
      HF_MODEL: "black-forest-labs/FLUX.1-dev",
      HF_REFERENCE_MODEL: "black-forest-labs/FLUX.1-Kontext-dev",
      HF_TIMEOUT: "700 millis"
    })
    generate = () => Effect.runPromiseExit(generator.textToImage(request))
  })
  afterAll(() => double?.close())

  const failure = async () => {
    const exit = await generate()
    if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error(`expected a failure, got ${JSON.stringify(exit)}`)
    return exit.cause.error
  }

  it("POSTs {inputs, parameters} to /models/<model> with the bearer token and answers the image by its magic bytes", async () => {
    double.script({ kind: "image", format: "webp" })
    const exit = await generate()
    expect(Exit.isSuccess(exit)).toBe(true)
    if (Exit.isSuccess(exit)) {
      expect(exit.value.format).toBe("webp")
      expect((await sharp(exit.value.bytes).metadata()).width).toBe(512)
    }
    const call = double.calls.at(-1)!
    expect(call.model).toBe("black-forest-labs/FLUX.1-dev")
    expect(call.authorization).toBe(`Bearer ${double.token}`)
    expect(call.body).toMatchObject({ inputs: request.prompt, parameters: { width: 512, height: 512, seed: 7 } })
    expect(typeof (call.body["parameters"] as Record<string, unknown>)["negative_prompt"]).toBe("string")
  })

  it("503 while the model loads is transient, carrying the estimated time as its delay", async () => {
    double.script({ kind: "loading", estimatedTime: 42.5 })
    const error = await failure()
    expect(error._tag).toBe("JobTransient")
    expect(error._tag === "JobTransient" && error.retryAfter !== undefined ? Duration.toMillis(error.retryAfter) : undefined).toBe(42_500)
  })

  it("429 is rate limited with the Retry-After", async () => {
    double.script({ kind: "rateLimited", retryAfter: 17 })
    const error = await failure()
    expect(error._tag).toBe("JobRateLimited")
    expect(error._tag === "JobRateLimited" ? Duration.toSeconds(error.retryAfter) : 0).toBe(17)
  })

  it("another 4xx (an NSFW refusal, a bad prompt) is permanent, with the provider's reason for the user", async () => {
    double.script({ kind: "refused", error: "Prompt flagged as NSFW\u0000 by the safety checker" })
    const error = await failure()
    expect(error._tag).toBe("JobPermanent")
    expect(error._tag === "JobPermanent" ? error.reason : "").toBe("The image service refused the request: Prompt flagged as NSFW by the safety checker")
    double.script({ kind: "status", status: 422 })
    expect((await failure())._tag).toBe("JobPermanent")
  })

  it("a 5xx is transient; a body that is not an image is permanent", async () => {
    double.script({ kind: "status", status: 502 })
    expect((await failure())._tag).toBe("JobTransient")
    double.script({ kind: "garbage" })
    const error = await failure()
    expect(error._tag).toBe("JobPermanent")
    expect(error._tag === "JobPermanent" ? error.reason : "").toMatch(/not an image/)
  })

  it("a provider that never answers is a timeout at HF_TIMEOUT", async () => {
    double.script({ kind: "hang" })
    const started = Date.now()
    const error = await failure()
    expect(error._tag).toBe("JobTimeout")
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it("image-to-image sends the reference as base64 to the reference model", async () => {
    const config = await Effect.runPromise(appConfigFrom({
      HF_TOKEN: double.token, HF_BASE_URL: double.baseUrl, HF_REFERENCE_MODEL: "black-forest-labs/FLUX.1-Kontext-dev"
    }))
    const generator = await Effect.runPromise(Effect.provide(ImageGenerator, HuggingFaceImageGeneratorLive.pipe(Layer.provide(Layer.succeed(AppConfig, config)))))
    const reference = new Uint8Array([1, 2, 3, 4])
    const exit = await Effect.runPromiseExit(generator.imageToImage({ ...request, reference }))
    expect(Exit.isSuccess(exit)).toBe(true)
    const call = double.calls.at(-1)!
    expect(call.model).toBe("black-forest-labs/FLUX.1-Kontext-dev")
    expect(call.body).toMatchObject({ inputs: Buffer.from(reference).toString("base64"), parameters: { prompt: request.prompt } })
  })
})

describe("the image generator without a provider", () => {
  it("is not configured without HF_TOKEN, and a network failure is transient", async () => {
    const unconfigured = await generatorWith({})
    expect(unconfigured.configured).toBe(false)
    expect(unconfigured.referenceConfigured).toBe(false)
    // A port nothing listens on: the connection is refused.
    const closed = await startHfDouble()
    const baseUrl = closed.baseUrl
    await closed.close()
    const generator = await generatorWith({ HF_TOKEN: closed.token, HF_BASE_URL: baseUrl })
    expect(generator.configured).toBe(true)
    const exit = await Effect.runPromiseExit(generator.textToImage(request))
    expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : undefined).toBe("JobTransient")
  })

  it("a misconfigured HF_MODEL or HF_BASE_URL stops startup, naming the variable", async () => {
    const exit = await Effect.runPromiseExit(appConfigFrom({ HF_MODEL: "not a model", HF_BASE_URL: "ftp://x", HF_REFERENCE_MODEL: "../etc" }))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(JSON.stringify(exit)).toMatch(/HF_MODEL/)
    expect(JSON.stringify(exit)).toMatch(/HF_BASE_URL/)
    expect(JSON.stringify(exit)).toMatch(/HF_REFERENCE_MODEL/)
  })
})

describe("retrying a model that is loading", () => {
  it("waits at least the provider's estimate, within the transient cap", async () => {
    const loading = new JobTransient({ reason: "loading", retryAfter: Duration.seconds(40) })
    const first = await Effect.runPromise(decide(defaultRetryPolicy, loading, { classFailures: 1 }))
    expect(first._tag).toBe("Retry")
    expect(first._tag === "Retry" ? Duration.toMillis(first.delay) : 0).toBe(40_000)
    const huge = new JobTransient({ reason: "loading", retryAfter: Duration.hours(2) })
    const capped = await Effect.runPromise(decide(defaultRetryPolicy, huge, { classFailures: 1 }))
    expect(capped._tag === "Retry" ? Duration.toMillis(capped.delay) : 0).toBe(Duration.toMillis(defaultRetryPolicy.transientMaxDelay))
    // Still the transient budget: the last attempt is final whatever the estimate.
    const spent = await Effect.runPromise(decide(defaultRetryPolicy, loading, { classFailures: defaultRetryPolicy.transientAttempts }))
    expect(spent._tag).toBe("Final")
  })
})

describe("image helpers", () => {
  it("read a pixel flood's dimensions from its header without decoding, and refuse to decode it", async () => {
    const flood = pngHeader(100_000, 100_000)
    const header = await Effect.runPromise(readImageHeader(flood))
    expect(header).toMatchObject({ width: 100_000, height: 100_000 })
    const decoded = await Effect.runPromiseExit(reencodeImage(flood, "png", 4096 * 4096))
    expect(Exit.isFailure(decoded)).toBe(true)
  })
})

describe("log redaction of the provider token", () => {
  it("masks an hf_ token by shape in any string, and the configured token as a secret value", () => {
    const redactor = makeRedactor(["hf_ConfiguredSecretValue987654321abc"])
    const line = redactor.text("calling provider with hf_AbCdEf0123456789GhIjKlMnOpQr and hf_ConfiguredSecretValue987654321abc")
    expect(line).not.toMatch(/hf_AbCdEf0123456789/)
    expect(line).not.toMatch(/ConfiguredSecretValue/)
    expect(redactor.text("the hf_ prefix alone and a short hf_abc stay")).toBe("the hf_ prefix alone and a short hf_abc stay")
  })
})

