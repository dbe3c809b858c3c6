import { HttpApiSchema } from "@effect/platform"
import { Context, type Effect, Schema } from "effect"
import type { JobError } from "../jobs/JobError.js"

/** No provider is configured (no HF_TOKEN): answered before anything is charged. */
export class ImageGenerationNotConfigured extends Schema.TaggedError<ImageGenerationNotConfigured>()(
  "ImageGenerationNotConfigured",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/** The image formats a provider may answer with (by magic bytes); anything else is a permanent failure. */
export type ImageFormat = "png" | "jpeg" | "webp"

export interface TextToImage {
  readonly prompt: string
  readonly negativePrompt?: string | undefined
  readonly width: number
  readonly height: number
  readonly seed: number
}

export interface ImageToImage extends TextToImage {
  /** The reference picture's bytes (png, jpeg or webp). */
  readonly reference: Uint8Array
}

export interface GeneratedImage {
  readonly bytes: Uint8Array
  readonly format: ImageFormat
}

/**
 * The port to an AI image provider (layers/images/HuggingFaceImageGenerator.ts is the Hugging Face
 * Inference API; a Pose Generator or another provider plugs in behind the same interface). Failures
 * are already classified into the job system's classes (services/jobs/JobError.ts): a model loading
 * is transient with its estimated delay, a 429 rate limited with its Retry-After, a refusal (bad
 * prompt, NSFW) or a body that is not an image permanent with a reason a user may read, a call past
 * its time limit a timeout, a network failure transient.
 */
export interface ImageGeneratorShape {
  /** False when no provider is configured: callers refuse before charging. */
  readonly configured: boolean
  /** False when no image-to-image model is configured. */
  readonly referenceConfigured: boolean
  readonly textToImage: (request: TextToImage) => Effect.Effect<GeneratedImage, JobError>
  readonly imageToImage: (request: ImageToImage) => Effect.Effect<GeneratedImage, JobError>
}

export class ImageGenerator extends Context.Tag("app/ImageGenerator")<ImageGenerator, ImageGeneratorShape>() {}
