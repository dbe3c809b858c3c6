import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { PaymentGatewayError } from "../../services/payments/DuitkuClient.js"
import { PaymentPackage, PaymentStatus } from "../../services/payments/packages.js"
import {
  AmountMismatch,
  CallbackSourceRefused,
  InvalidCallback,
  InvalidSignature,
  PaymentNotFound,
  PaymentsNotConfigured,
  PriceMismatch,
  StatusNotConfirmed,
  TooManyPendingPayments,
  UnknownPackage
} from "../../services/payments/PaymentError.js"
import { Authentication } from "../accounts/Authentication.js"
import { AdminAuth } from "../platform/AdminAuth.js"
import { RateLimited, ServiceUnavailable } from "../platform/ApiError.js"

export const PaymentView = Schema.Struct({
  paymentId: Schema.String,
  merchantOrderId: Schema.String,
  reference: Schema.NullOr(Schema.String),
  paymentUrl: Schema.NullOr(Schema.String),
  packageId: Schema.String,
  amount: Schema.Number,
  credits: Schema.Number,
  status: PaymentStatus,
  createdAt: Schema.String,
  expiresAt: Schema.String,
  settledAt: Schema.NullOr(Schema.String)
}).annotations({ identifier: "Payment" })

const Created = Schema.Struct({
  paymentId: Schema.String,
  merchantOrderId: Schema.String,
  reference: Schema.String,
  paymentUrl: Schema.String,
  packageId: Schema.String,
  amount: Schema.Number,
  credits: Schema.Number
})

/** The old web app also sends credits, amount, productName and type: accepted, and checked against the package. */
const CreatePayment = Schema.Struct({
  packageId: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
  credits: Schema.optional(Schema.Number),
  amount: Schema.optional(Schema.Number),
  productName: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
  type: Schema.optional(Schema.String.pipe(Schema.maxLength(32)))
})

const field = Schema.optional(Schema.String.pipe(Schema.maxLength(1000)))
const jsonField = Schema.optional(Schema.Union(Schema.String.pipe(Schema.maxLength(1000)), Schema.Number))
const callbackFields = <F>(f: F) => ({
  merchantCode: f,
  amount: f,
  merchantOrderId: f,
  productDetail: f,
  additionalParam: f,
  paymentCode: f,
  resultCode: f,
  merchantUserId: f,
  reference: f,
  signature: f,
  publisherOrderId: f,
  spUserHash: f,
  settlementDate: f,
  issuerCode: f
})

/** Duitku posts a form (application/x-www-form-urlencoded); JSON is accepted too. Unknown fields are ignored. */
const Callback = Schema.Union(
  Schema.Struct(callbackFields(field)).pipe(HttpApiSchema.withEncoding({ kind: "UrlParams" })),
  Schema.Struct(callbackFields(jsonField))
)

const wholeNumber = (name: string, min: number, max: number) =>
  Schema.compose(
    Schema.String.pipe(Schema.pattern(/^\d{1,9}$/, { message: () => `${name} must be a whole number` })),
    Schema.NumberFromString
  ).pipe(Schema.between(min, max, { message: () => `${name} must be from ${min} to ${max}` }))

const Uuid = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, {
  message: () => "a payment id is a UUID"
}))

/** Credit purchases through Duitku: the package list, creation, the gateway's callback, status, and the operators' view. */
export class PaymentsApi extends HttpApiGroup.make("payments")
  .add(
    HttpApiEndpoint.get("packages", "/payment/packages")
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), data: Schema.Struct({ packages: Schema.Array(PaymentPackage) }) }))
      .annotate(OpenApi.Description, "The active credit packages; prices in whole rupiah.")
  )
  .add(
    HttpApiEndpoint.post("create", "/payment/duitku/create")
      .setPayload(CreatePayment)
      .addSuccess(Schema.Struct({
        success: Schema.Literal(true),
        paymentUrl: Schema.String,
        reference: Schema.String,
        merchantOrderId: Schema.String,
        data: Created
      }))
      .addError(UnknownPackage)
      .addError(PriceMismatch)
      .addError(TooManyPendingPayments)
      .addError(PaymentGatewayError)
      .addError(PaymentsNotConfigured)
      .addError(RateLimited)
      .addError(ServiceUnavailable)
      .middleware(Authentication)
      .annotate(
        OpenApi.Description,
        "Starts a purchase of a server-side package; redirect the buyer to paymentUrl. 400 PRICE_MISMATCH when amount, credits or type disagree with the package."
      )
  )
  .add(
    HttpApiEndpoint.post("callback", "/payment/duitku/callback")
      .setPayload(Callback)
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), status: PaymentStatus, merchantOrderId: Schema.String }))
      .addError(CallbackSourceRefused)
      .addError(InvalidSignature)
      .addError(InvalidCallback)
      .addError(AmountMismatch)
      .addError(PaymentNotFound)
      .addError(StatusNotConfirmed)
      .addError(PaymentGatewayError)
      .addError(PaymentsNotConfigured)
      .annotate(OpenApi.Description, "Duitku's server-to-server notification. Replays answer 200 and grant nothing more.")
  )
  .add(
    HttpApiEndpoint.get("status", "/payment/status/:merchantOrderId")
      .setPath(Schema.Struct({ merchantOrderId: Schema.String.pipe(Schema.maxLength(64)) }))
      .addSuccess(Schema.Struct({ success: Schema.Literal(true), data: PaymentView }))
      .addError(PaymentNotFound)
      .addError(RateLimited)
      .addError(ServiceUnavailable)
      .middleware(Authentication)
      .annotate(OpenApi.Description, "The caller's own payment; 404 for anyone else's.")
  )
  .add(
    HttpApiEndpoint.get("adminList", "/admin/payments")
      .setUrlParams(Schema.Struct({
        status: Schema.optional(PaymentStatus),
        limit: Schema.optionalWith(wholeNumber("limit", 1, 100), { default: () => 50 }),
        offset: Schema.optionalWith(wholeNumber("offset", 0, 1_000_000), { default: () => 0 })
      }))
      .addSuccess(Schema.Struct({ items: Schema.Array(PaymentView.pipe(Schema.extend(Schema.Struct({ userId: Schema.String })))) }))
      .middleware(AdminAuth)
      .annotate(OpenApi.Description, "Payments, newest first, optionally of one status.")
  )
  .add(
    HttpApiEndpoint.get("adminGet", "/admin/payments/:paymentId")
      .setPath(Schema.Struct({ paymentId: Uuid }))
      .addSuccess(Schema.Struct({
        payment: PaymentView.pipe(Schema.extend(Schema.Struct({ userId: Schema.String, paymentMethod: Schema.NullOr(Schema.String), failureReason: Schema.NullOr(Schema.String) }))),
        callbacks: Schema.Array(Schema.Struct({
          id: Schema.String,
          outcome: Schema.String,
          sourceAddress: Schema.NullOr(Schema.String),
          fields: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
          receivedAt: Schema.String
        }))
      }))
      .addError(PaymentNotFound)
      .middleware(AdminAuth)
      .annotate(OpenApi.Description, "One payment with every callback received for it (signatures are not kept).")
  )
  .prefix("/api")
  .annotate(OpenApi.Title, "Payments") {}
