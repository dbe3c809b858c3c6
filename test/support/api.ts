import type { InProcessApp } from "./inProcessApp.js"

export interface ApiResponse {
  readonly status: number
  readonly headers: Headers
  // Test bodies are read field by field with expectations; typing each one would only repeat the assertions.
  readonly body: Record<string, any>
}

/** One JSON call against an in-process app; an empty body reads as {}. */
export const call = async (
  app: InProcessApp,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {}
): Promise<ApiResponse> => {
  const response = await fetch(app.url(path), {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text === "" ? {} : JSON.parse(text) }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

let counter = 0
/** An address no other test of this run has used; `local` is its first label (tests may vary its case). */
export const freshEmail = (local = "user", domain = "example.com") => `${local}.${Date.now()}.${++counter}@${domain}`
