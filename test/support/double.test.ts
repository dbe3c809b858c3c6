import { Cause, Context, Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { partialLayer } from "./double.js"

class Greeter extends Context.Tag("test/Greeter")<Greeter, {
  readonly greet: (name: string) => Effect.Effect<string>
  readonly count: (name: string) => Effect.Effect<number>
  readonly current: Effect.Effect<string>
}>() {}

const run = <A>(program: Effect.Effect<A, never, Greeter>) =>
  Effect.runPromiseExit(program.pipe(Effect.provide(partialLayer(Greeter, { greet: (name) => Effect.succeed(`hi ${name}`) }))))

const defect = (exit: Exit.Exit<unknown>) => Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "succeeded"

describe("partial test doubles", () => {
  it("the members a test states work", async () => {
    expect(await run(Effect.flatMap(Greeter, (g) => g.greet("ana")))).toEqual(Exit.succeed("hi ana"))
  })

  it("an operation it does not state dies naming the service and the member", async () => {
    const exit = await run(Effect.flatMap(Greeter, (g) => g.count("ana")))
    expect(defect(exit)).toContain("test/Greeter.count is not part of this test double")
  })

  it("so does an Effect-valued member, when yielded", async () => {
    const exit = await run(Effect.gen(function*() {
      const greeter = yield* Greeter
      return yield* greeter.current
    }))
    expect(defect(exit)).toContain("test/Greeter.current is not part of this test double")
  })
})
