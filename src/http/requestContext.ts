import { FiberRef } from "effect"

/** The current request's id, set by the request middleware for everything below it. */
export const CurrentRequestId = FiberRef.unsafeMake<string>("")

/** Inbound ids are kept only when they are short and plain, so they are safe to log and echo. */
export const isValidRequestId = (value: string): boolean => /^[A-Za-z0-9._:-]{8,128}$/.test(value)
