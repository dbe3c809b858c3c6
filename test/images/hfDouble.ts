import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import sharp from "sharp"

/**
 * A local stand-in for the Hugging Face Inference API (the external AI provider, the one thing these
 * tests replace): `POST /models/<owner>/<name>` with `{inputs, parameters}` and a bearer token,
 * answering the image's bytes; 503 `{error, estimated_time}` while "loading", 429 with Retry-After,
 * 400 `{error}` for a refused prompt. Each call takes the next scripted answer; with none left it
 * answers a picture.
 */
export type HfAnswer =
  | { readonly kind: "image"; readonly format?: "png" | "jpeg" | "webp" }
  | { readonly kind: "loading"; readonly estimatedTime: number }
  | { readonly kind: "rateLimited"; readonly retryAfter: number }
  | { readonly kind: "refused"; readonly status?: number; readonly error: string }
  | { readonly kind: "hang" }
  | { readonly kind: "garbage" }
  | { readonly kind: "status"; readonly status: number }

export interface HfCall {
  readonly model: string
  readonly authorization: string | undefined
  readonly body: Record<string, unknown>
}

export interface HfDouble {
  readonly baseUrl: string
  readonly token: string
  readonly calls: Array<HfCall>
  /** Queues answers for the next calls, in order. */
  readonly script: (...answers: ReadonlyArray<HfAnswer>) => void
  readonly close: () => Promise<void>
}

/** A small real picture of the format, made once per call (a gradient, so a thumbnail has content). */
export const pictureOf = async (format: "png" | "jpeg" | "webp", width = 512, height = 512): Promise<Buffer> => {
  const image = sharp({ create: { width, height, channels: 3, background: { r: 40, g: 120, b: 200 } } })
  return format === "png" ? image.png().toBuffer() : format === "jpeg" ? image.jpeg().toBuffer() : image.webp().toBuffer()
}

const readBody = async (request: IncomingMessage): Promise<Record<string, unknown>> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>
  } catch {
    return {}
  }
}

export const startHfDouble = async (token = "hf_TestDoubleToken0123456789abcdefXYZ"): Promise<HfDouble> => {
  const queue: Array<HfAnswer> = []
  const calls: Array<HfCall> = []
  const hanging = new Set<ServerResponse>()
  const server: Server = createServer((request, response) => {
    void (async () => {
      const body = await readBody(request)
      const match = /^\/models\/([^/]+\/[^/]+)$/.exec(request.url ?? "")
      if (request.method !== "POST" || match === null) {
        response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "Not Found" }))
        return
      }
      calls.push({ model: match[1]!, authorization: request.headers.authorization, body })
      if (request.headers.authorization !== `Bearer ${token}`) {
        response.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "Invalid credentials in Authorization header" }))
        return
      }
      const answer = queue.shift() ?? { kind: "image" }
      switch (answer.kind) {
        case "image": {
          const format = answer.format ?? "png"
          const bytes = await pictureOf(format)
          response.writeHead(200, { "content-type": `image/${format}`, "content-length": bytes.byteLength }).end(bytes)
          return
        }
        case "loading":
          response.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({
            error: `Model ${match[1]} is currently loading`,
            estimated_time: answer.estimatedTime
          }))
          return
        case "rateLimited":
          response.writeHead(429, { "content-type": "application/json", "retry-after": String(answer.retryAfter) })
            .end(JSON.stringify({ error: "Rate limit reached" }))
          return
        case "refused":
          response.writeHead(answer.status ?? 400, { "content-type": "application/json" }).end(JSON.stringify({ error: answer.error }))
          return
        case "status":
          response.writeHead(answer.status, { "content-type": "text/plain" }).end("upstream trouble")
          return
        case "garbage":
          response.writeHead(200, { "content-type": "image/png" }).end(Buffer.from("<html>definitely not a picture</html>"))
          return
        case "hang":
          hanging.add(response) // never answered; closed with the server
          return
      }
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    token,
    calls,
    script: (...answers) => void queue.push(...answers),
    close: async () => {
      for (const response of hanging) response.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
