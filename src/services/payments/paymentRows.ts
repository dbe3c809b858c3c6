import { Schema } from "effect"
import { PaymentStatus } from "./packages.js"

// The rows of the payments tables (migration 0007_payments) as the service reads them.

/** pg returns bigint as text; amounts and credits stay within the safe-integer range. */
const Int8 = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.int())

export const PackageRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  kind: Schema.Literal("subscription", "topup"),
  amount: Int8,
  credits: Int8
})

export const PaymentRow = Schema.Struct({
  id: Schema.String,
  userId: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("user_id")),
  packageId: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("package_id")),
  merchantOrderId: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("merchant_order_id")),
  reference: Schema.NullOr(Schema.String),
  amount: Int8,
  credits: Int8,
  status: PaymentStatus,
  paymentUrl: Schema.propertySignature(Schema.NullOr(Schema.String)).pipe(Schema.fromKey("payment_url")),
  paymentMethod: Schema.propertySignature(Schema.NullOr(Schema.String)).pipe(Schema.fromKey("payment_method")),
  failureReason: Schema.propertySignature(Schema.NullOr(Schema.String)).pipe(Schema.fromKey("failure_reason")),
  expiresAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("expires_at")),
  createdAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("created_at")),
  settledAt: Schema.propertySignature(Schema.NullOr(Schema.DateFromSelf)).pipe(Schema.fromKey("settled_at"))
})
export interface Payment extends Schema.Schema.Type<typeof PaymentRow> {}

export const CallbackRow = Schema.Struct({
  id: Schema.Union(Schema.Number, Schema.String),
  outcome: Schema.String,
  sourceAddress: Schema.propertySignature(Schema.NullOr(Schema.String)).pipe(Schema.fromKey("source_address")),
  fields: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  receivedAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("received_at"))
})
export interface CallbackRecord extends Schema.Schema.Type<typeof CallbackRow> {}

export const decodePackages = Schema.decodeUnknown(Schema.Array(PackageRow))
export const decodePayments = Schema.decodeUnknown(Schema.Array(PaymentRow))
export const decodeCallbacks = Schema.decodeUnknown(Schema.Array(CallbackRow))
