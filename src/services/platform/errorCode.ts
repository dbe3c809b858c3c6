/**
 * The one way to read a `code` from an unknown error: the error's own string `code`, else the first
 * one down its `cause` chain. Wrappers put the driver's error there: SqlError (the pg error, whose
 * code is the SQLSTATE), DatabaseError, StorageError (the errno error).
 *
 * `accept` narrows which codes count (a SQLSTATE, say): a wrapper's own code that does not match does
 * not hide the one beneath it.
 */
export const errorCodeOf = (error: unknown, accept: (code: string) => boolean = () => true): string | undefined => {
  let current = error
  for (let depth = 0; depth < MAX_DEPTH && typeof current === "object" && current !== null; depth++) {
    const code = "code" in current ? current.code : undefined
    if (typeof code === "string" && accept(code)) return code
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/** Cause chains are short; the bound keeps a cyclic one from looping. */
const MAX_DEPTH = 5

const SQLSTATE = /^[0-9A-Z]{5}$/

export const isSqlState = (code: string): boolean => SQLSTATE.test(code)

/** The Postgres SQLSTATE of an error (a SqlError, or anything wrapping the driver's error), if it has one. */
export const sqlStateOf = (error: unknown): string | undefined => errorCodeOf(error, isSqlState)
