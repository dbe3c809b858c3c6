/** Inbound ids are kept only when they are short and plain, so they are safe to log and echo. */
export const isValidRequestId = (value: string): boolean => /^[A-Za-z0-9._:-]{8,128}$/.test(value)

/** The id the HTTP server assigned to a request (see HttpServerLive); always present and valid there. */
export const requestIdOf = (headers: Readonly<Record<string, string | undefined>>): string =>
  headers["x-request-id"] ?? "unassigned"
