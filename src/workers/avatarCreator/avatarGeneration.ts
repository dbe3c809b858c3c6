import { Chunk, Effect, Schema, Stream } from "effect"
import { AvatarGenerationSettings, AvatarTraits } from "../../services/avatarCreator/avatarFields.js"
import { avatarCreatorApp, AVATAR_MAX_SIDE } from "../../services/avatarCreator/AvatarCreatorApp.js"
import { recordGeneratedAvatar, referenceImageKey } from "../../services/avatarCreator/avatarRows.js"
import { ImageGenerator } from "../../services/images/ImageGenerator.js"
import { imageFormats, reencodeImage, thumbnailOf } from "../../services/images/imageFiles.js"
import { JobPermanent } from "../../services/jobs/JobError.js"
import { Storage } from "../../services/platform/Storage.js"
import { makeGenerationHandler } from "../generations/generationHandler.js"

const decodeSettings = Schema.decodeUnknown(AvatarGenerationSettings)
const decodeTraits = Schema.decodeUnknown(AvatarTraits)

/** The largest picture a provider may answer that we decode (its pixels, to re-encode and thumbnail it). */
const MAX_PIXELS = AVATAR_MAX_SIDE * AVATAR_MAX_SIDE

const bytesOf = (stream: Stream.Stream<Uint8Array, unknown>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))

/**
 * An avatar generation job: the provider is called (failures come classified: a model loading or a
 * 429 is retried after the upstream's delay, a refusal is permanent), the picture is re-encoded (no
 * metadata) and thumbnailed, both stored, and the avatar recorded (shown once the generation
 * completes). The generation flow charges, completes, and refunds on a failure for good.
 */
export const avatarGenerationHandler = makeGenerationHandler({
  app: avatarCreatorApp,
  render: ({ generation, progress }) =>
    Effect.gen(function*() {
      const settings = yield* decodeSettings(generation.settings).pipe(
        Effect.mapError(() => new JobPermanent({ reason: "The generation's settings could not be read." }))
      )
      const traits = yield* decodeTraits(settings.traits).pipe(Effect.orElseSucceed(() => ({})))
      const projectId = generation.projectId
      if (projectId === null) return yield* new JobPermanent({ reason: "The generation names no project." })
      const generator = yield* ImageGenerator
      const storage = yield* Storage
      yield* progress(10)
      const request = { prompt: settings.prompt, width: settings.width, height: settings.height, seed: generation.seed ?? 0 }
      const referenceId = settings.referenceAvatarId
      const image = referenceId === null
        ? yield* generator.textToImage(request)
        : yield* Effect.gen(function*() {
          const key = yield* referenceImageKey(generation.userId, referenceId)
          if (key === undefined) return yield* new JobPermanent({ reason: "The reference avatar was deleted." })
          const reference = yield* bytesOf(yield* storage.get(key))
          return yield* generator.imageToImage({ ...request, reference })
        })
      yield* progress(70)
      const refused = () => new JobPermanent({ reason: "The image service answered with a picture that could not be read." })
      const picture = yield* reencodeImage(image.bytes, image.format, MAX_PIXELS).pipe(Effect.mapError(refused))
      const thumbnail = yield* thumbnailOf(picture, image.format, MAX_PIXELS).pipe(Effect.mapError(refused))
      const { extension, mime } = imageFormats[image.format]
      const base = `avatars/${generation.userId}/${generation.id}`
      const stored = yield* storage.put(`${base}.${extension}`, Stream.make(new Uint8Array(picture)), { contentType: mime })
      const storedThumb = yield* storage.put(`${base}-thumb.${extension}`, Stream.make(new Uint8Array(thumbnail)), { contentType: mime })
      const recorded = yield* recordGeneratedAvatar({
        generationId: generation.id,
        userId: generation.userId,
        projectId,
        name: settings.name,
        sourceType: settings.mode === "text" ? "text_to_image" : settings.mode === "preset" ? "from_preset" : "from_reference",
        prompt: settings.prompt,
        presetId: settings.presetId,
        traits,
        picture: {
          imageKey: stored.key,
          mime,
          extension,
          imageSize: stored.size,
          thumbnailKey: storedThumb.key,
          thumbnailSize: storedThumb.size
        }
      })
      if (!recorded) {
        yield* Effect.all([storage.delete(stored.key), storage.delete(storedThumb.key)], { discard: true })
        return yield* new JobPermanent({ reason: "The project was deleted before the avatar was ready." })
      }
      return {
        outputs: [{ key: stored.key, size: stored.size, role: "image" }, { key: storedThumb.key, size: storedThumb.size, role: "thumbnail" }],
        delivered: 1
      }
    }),
  // A permanent failure's reason is written for users (the provider's refusal, a deleted project).
  describeFailure: (failure) => {
    const prefix = "permanent: "
    if (failure.jobClass !== "permanent" || failure.lastError.tag !== "JobPermanent" || !failure.lastError.message.startsWith(prefix)) {
      return undefined
    }
    return { code: "GENERATION_REFUSED", message: `${failure.lastError.message.slice(prefix.length)} Your credits were refunded.` }
  }
})
