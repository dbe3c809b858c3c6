import { Effect, Either, Option } from "effect"
import { describe, expect, it } from "vitest"
import { awaitWithin, Lifecycle, type LifecycleShape } from "../../src/services/platform/Lifecycle.js"

const settlesAfter = (ms: number) => () => new Promise<string>((resolve) => setTimeout(() => resolve("settled"), ms))

/** Runs `release` as an acquireRelease finalizer (uninterruptible) and times it. */
const timeRelease = async <A>(release: Effect.Effect<A>) => {
  let result: A | undefined
  const start = performance.now()
  await Effect.runPromise(Effect.scoped(Effect.acquireRelease(Effect.void, () => Effect.map(release, (a) => void (result = a)))))
  return { elapsed: performance.now() - start, result: result! }
}

describe("bounds in release code", () => {
  it("a 300 ms bound returns within 300 ms + slack inside a finalizer when the promise takes 3 s", async () => {
    const { elapsed, result } = await timeRelease(Effect.either(awaitWithin(settlesAfter(3_000), "300 millis")))
    expect(elapsed).toBeGreaterThanOrEqual(290)
    expect(elapsed).toBeLessThan(800)
    expect(Either.isLeft(result) && result.left._tag).toBe("TimeoutException")
  })

  it("a promise that settles in time gives its value; one that rejects gives its error", async () => {
    expect((await timeRelease(Effect.either(awaitWithin(settlesAfter(20), "1 second")))).result).toEqual(Either.right("settled"))
    const failed = (await timeRelease(Effect.either(awaitWithin(() => Promise.reject(new Error("no")), "1 second")))).result
    expect(Either.isLeft(failed) && failed.left._tag).toBe("UnknownException")
  })

  it("the shutdown cap shortens a longer bound: it ends 500 ms before the cap", async () => {
    const deadline = Date.now() + 1_000
    const lifecycle = { deadline: () => deadline } as unknown as LifecycleShape
    const { elapsed } = await timeRelease(
      Effect.option(awaitWithin(settlesAfter(3_000), "5 seconds")).pipe(Effect.provideService(Lifecycle, lifecycle))
    )
    expect(elapsed).toBeGreaterThanOrEqual(450)
    expect(elapsed).toBeLessThan(900)
    // Past the cap there is no time left at all.
    const late = { deadline: () => Date.now() - 1 } as unknown as LifecycleShape
    const after = await timeRelease(Effect.option(awaitWithin(settlesAfter(3_000), "5 seconds")).pipe(Effect.provideService(Lifecycle, late)))
    expect(after.result).toEqual(Option.none())
    expect(after.elapsed).toBeLessThan(200)
  })
})
