import type * as http from "node:http"

/**
 * The body limit for requests without a Content-Length (chunked), enforced at the Node request
 * level. (A declared Content-Length over the limit is refused by errorEnvelope before anything is
 * read.) The platform's own MaxBodySize check destroys the request stream, and with it the socket,
 * so its 413 never reaches the client; this counts bytes as Node's parser hands them to the
 * request stream, and at the limit answers 413 itself, in the one error body, with
 * `Connection: close`:
 * - the rest of the body is read and discarded (lingering close), so the client, still sending,
 *   is not reset before it has read the answer; at most the limit again (1 MiB at least) or
 *   DRAIN_MS more, then the socket is destroyed;
 * - once the client has sent everything, the connection is closed after the answer is flushed.
 *   The response is left unended on purpose: the platform then interrupts the handler (its
 *   client-abort path), so a handler waiting for the rest of the body never hangs, and anything it
 *   still writes is dropped;
 * - the request is remembered as refused, so the access log says 413 whatever the handler did.
 * Node's parser calls `push` on the request stream for each body chunk; wrapping it on this one
 * request is the only hook that sees bytes before a reader does without changing the stream's flow.
 */

/**
 * Upload routes take files far larger than BODY_LIMIT_BYTES: `/api/uploads/...` and any app route whose
 * path ends in `/upload` (`/api/apps/video-mixer/videos/upload`). They get the uploads' request limit
 * instead, and count the file itself against its kind's limit while it streams (services/uploads).
 */
export const isUploadRoute = (url: string): boolean => {
  const path = url.split("?", 1)[0] ?? ""
  return path.startsWith("/api/uploads/") || (path.startsWith("/api/apps/") && path.endsWith("/upload"))
}

/** The body limit of a request URL: the upload routes' own, else the general one. */
export const bodyLimitFor = (limits: { readonly general: number; readonly uploads: number }) => (url: string): number =>
  isUploadRoute(url) ? limits.uploads : limits.general

const DRAIN_MS = 5_000
const MIN_DRAIN_BYTES = 1024 * 1024

const refused = new WeakSet<http.IncomingMessage>()

/** Whether the request was answered 413 here (the access log reports that status). */
export const wasRefusedForSize = (req: http.IncomingMessage): boolean => refused.has(req)

/** Whether `limitStreamedBody` must watch this request: a body is coming without a declared length. */
export const isStreamedBody = (req: http.IncomingMessage): boolean =>
  req.headers["transfer-encoding"] !== undefined && req.headers["content-length"] === undefined

type Push = (chunk: unknown, encoding?: BufferEncoding) => boolean

export const limitStreamedBody = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  limitBytes: number,
  body: (requestId: string) => string
): void => {
  const push: Push = req.push.bind(req)
  const drainBytes = Math.max(limitBytes, MIN_DRAIN_BYTES)
  let received = 0
  let drained = 0
  let timer: NodeJS.Timeout | undefined

  const finish = () => {
    // Everything was received: end our side once the answer is flushed. Closing the connection
    // with the response unended interrupts the handler (the platform's client-abort path).
    clearTimeout(timer)
    req.socket.destroySoon()
  }
  const abort = () => {
    clearTimeout(timer)
    req.socket.destroy()
  }
  const refuse = () => {
    refused.add(req)
    if (res.headersSent) return abort() // answered already (the body is being discarded): just stop
    const text = body(String(res.getHeader("x-request-id") ?? ""))
    res.writeHead(413, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      connection: "close"
    })
    res.write(text)
    // From here on this answer is the only one: whatever the handler still writes is dropped.
    res.writeHead = () => res
    res.write = () => true
    res.end = ((...args: Array<unknown>) => {
      const callback = args.find((arg) => typeof arg === "function") as (() => void) | undefined
      callback?.()
      return res
    }) as typeof res.end
    timer = setTimeout(abort, DRAIN_MS)
    timer.unref()
  }

  const watch: Push = (chunk, encoding) => {
    if (chunk !== null && typeof chunk === "object" && "length" in chunk) {
      received += (chunk as Buffer).length
      if (received > limitBytes) {
        req.push = discard
        refuse()
        return true
      }
    }
    return push(chunk, encoding)
  }
  const discard: Push = (chunk) => {
    if (chunk === null) finish()
    else if ((drained += (chunk as Buffer).length) > drainBytes) abort()
    return true
  }
  req.push = watch
}
