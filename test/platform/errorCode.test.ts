import { SqlError } from "@effect/sql"
import { describe, expect, it } from "vitest"
import { errorCodeOf, sqlStateOf } from "../../src/services/platform/errorCode.js"

describe("errorCodeOf", () => {
  it("reads the error's own string code", () => {
    expect(errorCodeOf(Object.assign(new Error("gone"), { code: "ENOENT" }))).toBe("ENOENT")
  })

  it("looks through the cause chain: a SqlError carries the driver's SQLSTATE in its cause", () => {
    const error = new SqlError.SqlError({ cause: Object.assign(new Error("duplicate key"), { code: "23505" }) })
    expect(errorCodeOf(error)).toBe("23505")
    expect(sqlStateOf(error)).toBe("23505")
    expect(errorCodeOf({ cause: { cause: { code: "EACCES" } } })).toBe("EACCES")
  })

  it("a wrapper's code that is not accepted does not hide the one beneath it", () => {
    const error = { code: "ERR_WRAPPED", cause: { code: "40001" } }
    expect(errorCodeOf(error)).toBe("ERR_WRAPPED")
    expect(sqlStateOf(error)).toBe("40001")
  })

  it("has no code for what carries none: non-string codes, primitives, and a cyclic chain ends", () => {
    const cyclic: { cause?: unknown } = {}
    cyclic.cause = cyclic
    for (const value of [undefined, null, "ENOENT", 42, { code: 5 }, new Error("plain"), cyclic]) {
      expect(errorCodeOf(value)).toBeUndefined()
    }
  })
})
