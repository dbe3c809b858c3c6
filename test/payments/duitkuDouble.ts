import { createHash } from "node:crypto"
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * A local stand-in for Duitku's API (the external gateway, the one thing tests replace): the v2
 * inquiry and the transaction status, with their signatures checked as Duitku checks them
 * (docs.duitku.com/api/en). Orders start pending ("01"); a test marks them paid or failed.
 */
export interface DuitkuDouble {
  readonly baseUrl: string
  readonly merchantCode: string
  readonly apiKey: string
  /** "ok", or a failure the next inquiries show. */
  mode: "ok" | "slow" | "error" | "reject"
  statusMode: "ok" | "error"
  readonly inquiries: Array<Record<string, unknown>>
  readonly statusCalls: Array<Record<string, unknown>>
  /** What the status API reports for the order (and, to test a disagreement, another amount). */
  readonly setStatus: (merchantOrderId: string, statusCode: "00" | "01" | "02", reportedAmount?: number) => void
  /** The callback Duitku would post for the order, signed. */
  readonly callbackFields: (merchantOrderId: string, resultCode?: string, overrides?: Record<string, string>) => Record<string, string>
  readonly close: () => Promise<void>
}

const md5 = (s: string) => createHash("md5").update(s, "utf8").digest("hex")

const readJson = async (request: IncomingMessage): Promise<Record<string, unknown>> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>
}

export const startDuitkuDouble = async (merchantCode = "DTEST01", apiKey = "k3y-for-the-local-gateway-double"): Promise<DuitkuDouble> => {
  const orders = new Map<string, { amount: number; reportedAmount: number; reference: string; statusCode: "00" | "01" | "02" }>()
  let counter = 0
  const pendingTimers = new Set<NodeJS.Timeout>()
  const double: DuitkuDouble = {
    baseUrl: "",
    merchantCode,
    apiKey,
    mode: "ok",
    statusMode: "ok",
    inquiries: [],
    statusCalls: [],
    setStatus: (id, statusCode, reportedAmount) => {
      const order = orders.get(id)
      if (order === undefined) throw new Error(`the double has no order ${id}`)
      order.statusCode = statusCode
      order.reportedAmount = reportedAmount ?? order.amount
    },
    callbackFields: (id, resultCode = "00", overrides = {}) => {
      const order = orders.get(id)
      if (order === undefined) throw new Error(`the double has no order ${id}`)
      const amount = overrides["amount"] ?? String(order.amount)
      return {
        merchantCode,
        amount,
        merchantOrderId: id,
        productDetail: "Lumiku package",
        additionalParam: "",
        paymentCode: "VC",
        resultCode,
        merchantUserId: "buyer@example.com",
        reference: order.reference,
        signature: md5(merchantCode + amount + id + apiKey),
        publisherOrderId: `PUB${order.reference}`,
        spUserHash: "",
        settlementDate: "2026-11-30",
        issuerCode: "",
        ...overrides
      }
    },
    close: () => {
      for (const timer of pendingTimers) clearTimeout(timer)
      return new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    }
  }
  const server: Server = createServer((request, response) => {
    const answer = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" })
      response.end(JSON.stringify(body))
    }
    void readJson(request).then((body) => {
      if (request.url === "/webapi/api/merchant/v2/inquiry") {
        double.inquiries.push(body)
        const id = String(body["merchantOrderId"])
        const amount = Number(body["paymentAmount"])
        if (body["signature"] !== md5(String(body["merchantCode"]) + id + String(body["paymentAmount"]) + apiKey)) {
          return answer(401, { Message: "Wrong signature" })
        }
        if (double.mode === "error") return answer(500, { Message: "internal error" })
        if (double.mode === "reject") return answer(200, { statusCode: "01", statusMessage: "FAILED" })
        const reference = `DREF${++counter}${id.slice(-6)}`
        orders.set(id, { amount, reportedAmount: amount, reference, statusCode: "01" })
        const ok = () =>
          answer(200, {
            merchantCode,
            reference,
            paymentUrl: `https://sandbox.duitku.com/topup/topupdirectv2.aspx?ref=${reference}`,
            amount: String(amount),
            statusCode: "00",
            statusMessage: "SUCCESS"
          })
        if (double.mode === "slow") {
          const timer = setTimeout(ok, 5_000)
          pendingTimers.add(timer)
          return
        }
        return ok()
      }
      if (request.url === "/webapi/api/merchant/transactionStatus") {
        double.statusCalls.push(body)
        const id = String(body["merchantOrderId"])
        if (body["signature"] !== md5(String(body["merchantCode"]) + id + apiKey)) return answer(401, { Message: "Wrong signature" })
        if (double.statusMode === "error") return answer(503, { Message: "unavailable" })
        const order = orders.get(id)
        if (order === undefined) return answer(200, { merchantOrderId: id, statusCode: "02", statusMessage: "NOT FOUND" })
        return answer(200, {
          merchantOrderId: id,
          reference: order.reference,
          amount: String(order.reportedAmount),
          fee: "0.00",
          statusCode: order.statusCode,
          statusMessage: order.statusCode === "00" ? "SUCCESS" : order.statusCode === "01" ? "PROCESS" : "FAILED"
        })
      }
      answer(404, { Message: "not found" })
    }, () => answer(400, { Message: "bad json" }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return Object.assign(double, { baseUrl: `http://127.0.0.1:${port}` })
}
