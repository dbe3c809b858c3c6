import { type Context, Effect, Layer } from "effect"

/**
 * A partial test double of any service: a test states only the members it uses; any other member
 * dies when used, naming itself (`app/Ledger.refund is not part of this test double`). A missing
 * member works both as an operation (called) and as an Effect value (yielded), since a test double
 * cannot know which one the service declares.
 */
export const partial = <S extends object>(key: string, members: Partial<S>): S =>
  new Proxy(members as S, {
    get(target, property, receiver) {
      if (property in target || typeof property === "symbol" || property === "then") return Reflect.get(target, property, receiver)
      return missing(`${key}.${property} is not part of this test double`)
    }
  })

const missing = (message: string) => {
  const died = Effect.dieMessage(message)
  const member = (..._args: ReadonlyArray<unknown>) => died
  // Also an Effect: the prototype and instruction fields of the `died` value.
  Object.setPrototypeOf(member, Object.getPrototypeOf(died))
  for (const key of Reflect.ownKeys(died)) Object.defineProperty(member, key, { value: Reflect.get(died, key) })
  return member
}

/** A layer providing a partial double of the service behind `tag`. */
export const partialLayer = <I, S extends object>(tag: Context.Tag<I, S>, members: Partial<S>): Layer.Layer<I> =>
  Layer.succeed(tag, partial<S>(tag.key, members))
