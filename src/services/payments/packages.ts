import { Schema } from "effect"

/** A credit package of the server's price list (table payment_packages); amounts in whole rupiah. */
export const PaymentPackage = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  kind: Schema.Literal("subscription", "topup"),
  amount: Schema.Number,
  credits: Schema.Number
}).annotations({ identifier: "PaymentPackage" })
export type PaymentPackage = typeof PaymentPackage.Type

export const PaymentStatus = Schema.Literal("pending", "success", "failed", "expired")
export type PaymentStatus = typeof PaymentStatus.Type

/** What the client may send with a purchase; every field but packageId must agree with the package. */
export interface PurchaseClaim {
  readonly packageId: string
  readonly amount?: number | undefined
  readonly credits?: number | undefined
  readonly productName?: string | undefined
  readonly type?: string | undefined
}

/** The first field of the claim that disagrees with the package, compared as integers (never floats). */
export const claimMismatch = (pkg: PaymentPackage, claim: PurchaseClaim): string | undefined => {
  if (claim.amount !== undefined && !(Number.isSafeInteger(claim.amount) && claim.amount === pkg.amount)) return "amount"
  if (claim.credits !== undefined && !(Number.isSafeInteger(claim.credits) && claim.credits === pkg.credits)) return "credits"
  if (claim.type !== undefined && claim.type !== pkg.kind) return "type"
  return undefined
}
