import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { type GeneratedImage, ImageGenerator } from "../../services/images/ImageGenerator.js"
import { detectImageFormat } from "../../services/images/imageFiles.js"
import { parseRetryAfter } from "../../services/jobs/classify.js"
import { JobPermanent, JobRateLimited, JobTimeout, JobTransient } from "../../services/jobs/JobError.js"
import { AppConfig } from "../../services/platform/AppConfig.js"

/** A larger answer is not an avatar: refused while it streams rather than held in memory. */
const MAX_IMAGE_BYTES = 32 * 1024 * 1024
/** Used when a 429 carries no Retry-After. */
const DEFAULT_RETRY_AFTER = Duration.seconds(30)
/** Statuses worth another attempt (besides 429 and a model loading). */
const TRANSIENT = new Set([408, 500, 502, 503, 504])

interface Answer {
  readonly status: number
  readonly retryAfter: string | null
  readonly body: Uint8Array
}

/** The `error` text of a JSON error body, cut short and stripped of control characters: shown to the user. */
const errorText = (body: Uint8Array): string | undefined => {
  try {
    const json = JSON.parse(new TextDecoder().decode(body)) as unknown
    const error = typeof json === "object" && json !== null && "error" in json ? json.error : undefined
    const text = typeof error === "string" ? error : Array.isArray(error) ? error.filter((e) => typeof e === "string").join("; ") : undefined
    return text === undefined || text.trim() === "" ? undefined : text.replace(/\p{C}+/gu, " ").replace(/\s+/g, " ").trim().slice(0, 200)
  } catch {
    return undefined
  }
}

const estimatedTime = (body: Uint8Array): number | undefined => {
  try {
    const json = JSON.parse(new TextDecoder().decode(body)) as unknown
    const value = typeof json === "object" && json !== null && "estimated_time" in json ? json.estimated_time : undefined
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined
  } catch {
    return undefined
  }
}

/** Reads the body up to the cap; a larger one fails the read (and the call, as permanent). */
const readCapped = async (response: Response): Promise<Uint8Array> => {
  const reader = response.body?.getReader()
  if (reader === undefined) return new Uint8Array(0)
  const chunks: Array<Uint8Array> = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > MAX_IMAGE_BYTES) {
      await reader.cancel()
      throw new RangeError("answer too large")
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}

/**
 * The Hugging Face Inference API behind ImageGenerator: a model is POSTed at
 * `<HF_BASE_URL>/models/<model>` with `{inputs, parameters}` and answers the image's bytes; while it
 * loads it answers 503 `{error, estimated_time}`, and 429 with Retry-After when rate limited. Each
 * call has its own deadline (HF_TIMEOUT, an AbortSignal that drops the socket) and is classified
 * into the job classes here, so the job system retries it as its class says. The token goes only
 * into the Authorization header, never into a log line or an error.
 * Holds no resource beyond each call (fetch's connection pool is the process's).
 */
export const HuggingFaceImageGeneratorLive = Layer.effect(
  ImageGenerator,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const settings = config.images
    const token = Option.map(settings.token, Redacted.value)
    const timeout = settings.timeout
    const timeoutMs = Duration.toMillis(timeout)

    const post = (model: string, body: Record<string, unknown>) =>
      Effect.tryPromise({
        try: async (signal): Promise<Answer> => {
          const response = await fetch(`${settings.baseUrl}/models/${model}`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${Option.getOrElse(token, () => "")}`,
              "content-type": "application/json",
              accept: "image/png, image/jpeg, image/webp, application/json"
            },
            body: JSON.stringify(body),
            signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
          })
          return {
            status: response.status,
            retryAfter: response.headers.get("retry-after"),
            body: await readCapped(response)
          }
        },
        catch: (cause) => {
          if (cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError")) return new JobTimeout({ budget: timeout })
          if (cause instanceof RangeError) return new JobPermanent({ reason: "The image service answered with a file too large to be an avatar." })
          // fetch's TypeError carries the socket error (ECONNREFUSED, ECONNRESET...) as its cause
          return new JobTransient({ reason: "the image service could not be reached", cause })
        }
      }).pipe(Effect.flatMap(classifyAnswer))

    const classifyAnswer = (answer: Answer): Effect.Effect<GeneratedImage, JobPermanent | JobRateLimited | JobTransient> => {
      const { status, body } = answer
      if (status === 429) {
        return Effect.fail(new JobRateLimited({
          reason: "the image service is rate limiting us",
          retryAfter: parseRetryAfter(answer.retryAfter ?? undefined) ?? DEFAULT_RETRY_AFTER
        }))
      }
      if (status === 503) {
        const estimate = estimatedTime(body)
        return Effect.fail(
          estimate === undefined
            ? new JobTransient({ reason: "the image service answered 503" })
            : new JobTransient({ reason: "the image model is loading", retryAfter: Duration.millis(Math.ceil(estimate * 1000)) })
        )
      }
      if (TRANSIENT.has(status) || status >= 500) return Effect.fail(new JobTransient({ reason: `the image service answered ${status}` }))
      if (status >= 400) {
        const said = errorText(body)
        return Effect.fail(new JobPermanent({
          reason: said === undefined
            ? `The image service refused the request (HTTP ${status}).`
            : `The image service refused the request: ${said}`
        }))
      }
      if (status < 200 || status > 299) return Effect.fail(new JobPermanent({ reason: `The image service answered ${status}.` }))
      return detectImageFormat(body).pipe(
        Effect.flatMap((format) =>
          format === undefined
            ? Effect.fail(new JobPermanent({ reason: "The image service answered with something that is not an image." }))
            : Effect.succeed({ bytes: body, format })
        )
      )
    }

    const parameters = (request: { readonly negativePrompt?: string | undefined; readonly width: number; readonly height: number; readonly seed: number }) => ({
      negative_prompt: request.negativePrompt ?? settings.negativePrompt,
      width: request.width,
      height: request.height,
      seed: request.seed
    })

    return ImageGenerator.of({
      configured: Option.isSome(token),
      referenceConfigured: Option.isSome(token) && Option.isSome(settings.referenceModel),
      textToImage: Effect.fn("ImageGenerator.textToImage")(function*(request) {
        if (Option.isNone(token)) return yield* new JobPermanent({ reason: "Image generation is not configured." })
        return yield* post(settings.model, { inputs: request.prompt, parameters: parameters(request) })
      }),
      imageToImage: Effect.fn("ImageGenerator.imageToImage")(function*(request) {
        if (Option.isNone(token) || Option.isNone(settings.referenceModel)) {
          return yield* new JobPermanent({ reason: "Generation from a reference image is not configured." })
        }
        return yield* post(settings.referenceModel.value, {
          inputs: Buffer.from(request.reference).toString("base64"),
          parameters: { prompt: request.prompt, ...parameters(request) }
        })
      })
    })
  })
)
