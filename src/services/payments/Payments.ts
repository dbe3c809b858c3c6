import { randomBytes } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Effect, Metric, Option, Redacted } from "effect"
import { Ledger } from "../credits/Ledger.js"
import { AppConfig } from "../platform/AppConfig.js"
import { type CallbackOrigin, makeCallbackSourceCheck } from "./callbackSource.js"
import { DuitkuClient, type PaymentGatewayError } from "./DuitkuClient.js"
import { CALLBACK_FAILED, CALLBACK_SUCCESS, STATUS_FAILED, STATUS_SUCCESS } from "./duitkuFacts.js"
import { paymentsCreated, paymentsExpired, paymentsFailed, paymentsSucceeded, rejected } from "./metrics.js"
import { claimMismatch, type PaymentPackage, type PaymentStatus, type PurchaseClaim } from "./packages.js"
import { auditFields, type CallbackFields, parseAmount } from "./callbackFields.js"
import { decodeCallbacks, decodePackages, decodePayments, type Payment } from "./paymentRows.js"
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
} from "./PaymentError.js"
import { callbackSignature, signatureMatches } from "./signature.js"

export type { CallbackFields } from "./callbackFields.js"
export type { CallbackRecord, Payment } from "./paymentRows.js"

/** Who pays: the authenticated caller. */
export interface Payer {
  readonly id: string
  readonly email: string
}

/** Past Duitku's own expiry period, so a payment made in its last minute still settles before we expire it. */
const EXPIRY_GRACE_MINUTES = 10
/** Pending payments younger than this are left to their callback by the reconciliation. */
const RECONCILE_MIN_AGE_SECONDS = 60
const MAINTENANCE_BATCH = 100

/** Unguessable: 128 random bits (not a timestamp or a user id prefix, as before); 36 characters, within Duitku's 50. */
const newMerchantOrderId = () => `LMK-${randomBytes(16).toString("hex")}`

export interface MaintenanceResult {
  readonly expired: number
  readonly succeeded: number
  readonly failed: number
}

/**
 * Credit purchases through Duitku. The price list is the server's (payment_packages); a payment row
 * is written pending before the gateway is asked, and settles once: every transition is an
 * `UPDATE ... WHERE status = 'pending'`, and the paid one grants its credits in the same
 * transaction through the ledger, keyed by the payment id. So a callback replayed concurrently, a day
 * later or after a restart grants nothing more, and answers 200 so the gateway stops retrying.
 */
export class Payments extends Effect.Service<Payments>()("app/Payments", {
  effect: Effect.gen(function*() {
    const config = yield* AppConfig
    const sql = yield* SqlClient.SqlClient
    const ledger = yield* Ledger
    const duitku = yield* DuitkuClient
    const settings = config.duitku
    const checkSource = makeCallbackSourceCheck(config)

    const credentials = Option.all({
      merchantCode: Option.map(settings.merchantCode, Redacted.value),
      apiKey: Option.map(settings.apiKey, Redacted.value),
      callbackUrl: settings.callbackUrl,
      returnUrl: settings.returnUrl
    })
    const configured = Option.match(credentials, {
      onNone: () => Effect.fail(new PaymentsNotConfigured({ message: "Payments are not configured" })),
      onSome: Effect.succeed
    })

    const packages = Effect.fn("Payments.packages")(function*() {
      const rows = yield* sql`SELECT id, name, kind, amount, credits FROM payment_packages WHERE active ORDER BY position, id`
      return yield* decodePackages(rows)
    }, Effect.orDie)

    const findPackage = (id: string) =>
      Effect.flatMap(
        sql`SELECT id, name, kind, amount, credits FROM payment_packages WHERE id = ${id} AND active`.pipe(
          Effect.flatMap(decodePackages),
          Effect.orDie
        ),
        (rows): Effect.Effect<PaymentPackage, UnknownPackage> =>
          rows[0] === undefined
            ? Effect.fail(new UnknownPackage({ message: `There is no package "${id.slice(0, 100)}"` }))
            : Effect.succeed(rows[0])
      )

    const paymentBy = (column: "id" | "merchant_order_id", value: string) =>
      sql`SELECT * FROM payments WHERE ${sql(column)} = ${value}`.pipe(
        Effect.flatMap(decodePayments),
        Effect.map((rows) => Option.fromNullable(rows[0])),
        Effect.orDie
      )

    const logged = (message: string, payment: { readonly id: string; readonly merchantOrderId: string }, extra: Record<string, unknown> = {}) =>
      Effect.logInfo(message, { paymentId: payment.id, merchantOrderId: payment.merchantOrderId, ...extra })

    /** The paid transition and its ledger credit, in one transaction; false when the payment was no longer open. */
    const settlePaid = (payment: Payment, paymentMethod: string | undefined) =>
      sql.withTransaction(Effect.gen(function*() {
        // A payment the expiry job closed is still honoured when the gateway reports it paid: the money arrived.
        const rows = yield* sql`
          UPDATE payments
          SET status = 'success', settled_at = now(), updated_at = now(),
              payment_method = coalesce(${paymentMethod ?? null}, payment_method)
          WHERE id = ${payment.id} AND status IN ('pending', 'expired')
          RETURNING id`
        if (rows.length === 0) return false
        yield* ledger.credit({
          userId: payment.userId,
          amount: payment.credits,
          key: payment.id,
          kind: "purchase",
          reason: `Purchase of package ${payment.packageId} (${payment.merchantOrderId})`,
          reference: payment.merchantOrderId
        })
        return true
      })).pipe(
        Effect.orDie,
        Effect.tap((granted) =>
          granted
            ? Effect.zipRight(
              Metric.increment(paymentsSucceeded),
              logged("payment succeeded; credits granted", payment, { credits: payment.credits })
            )
            : Effect.void
        )
      )

    const settleFailed = (payment: { readonly id: string; readonly merchantOrderId: string }, reason: string) =>
      sql`
        UPDATE payments SET status = 'failed', failure_reason = ${reason}, updated_at = now(), settled_at = now()
        WHERE id = ${payment.id} AND status = 'pending'
        RETURNING id`.pipe(
        Effect.orDie,
        Effect.map((rows) => rows.length > 0),
        Effect.tap((changed) =>
          changed ? Effect.zipRight(Metric.increment(paymentsFailed), logged("payment failed", payment, { reason })) : Effect.void
        )
      )

    const create = Effect.fn("Payments.create")(function*(payer: Payer, claim: PurchaseClaim) {
      yield* configured
      const pkg = yield* findPackage(claim.packageId)
      const field = claimMismatch(pkg, claim)
      if (field !== undefined) {
        return yield* new PriceMismatch({ message: `The ${field} does not match package "${pkg.id}"`, field })
      }
      const merchantOrderId = newMerchantOrderId()
      const expiryMinutes = settings.expiryMinutes
      // The user's row lock serialises this user's creations, so the pending cap holds under concurrency.
      const payment = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`SELECT id FROM users WHERE id = ${payer.id} FOR UPDATE`
        const [counted] = yield* sql<{ readonly count: number }>`
          SELECT count(*)::int AS count FROM payments WHERE user_id = ${payer.id} AND status = 'pending' AND expires_at > now()`
        if ((counted?.count ?? 0) >= settings.maxPending) {
          return yield* new TooManyPendingPayments({
            message: `At most ${settings.maxPending} payments may be pending at once; finish or wait for one to expire`,
            limit: settings.maxPending
          })
        }
        const rows = yield* sql`
          INSERT INTO payments (user_id, package_id, merchant_order_id, amount, credits, expires_at)
          VALUES (${payer.id}, ${pkg.id}, ${merchantOrderId}, ${pkg.amount}, ${pkg.credits},
                  now() + make_interval(mins => ${expiryMinutes + EXPIRY_GRACE_MINUTES}))
          RETURNING *`
        const [row] = yield* decodePayments(rows)
        return row!
      })).pipe(Effect.catchTags({ SqlError: Effect.die, ParseError: Effect.die }))
      yield* logged("payment created; asking the gateway", payment, { packageId: pkg.id, amount: pkg.amount })

      const inquiry = yield* duitku.inquiry({
        merchantOrderId,
        amount: pkg.amount,
        productDetails: `Lumiku ${pkg.name}`,
        email: payer.email,
        customerName: payer.email,
        expiryMinutes
      }).pipe(
        Effect.tapError((error: PaymentGatewayError) => settleFailed(payment, `gateway ${error.reason}: ${error.message}`.slice(0, 500)))
      )
      yield* sql`
        UPDATE payments SET reference = ${inquiry.reference}, payment_url = ${inquiry.paymentUrl}, updated_at = now()
        WHERE id = ${payment.id}`.pipe(Effect.orDie)
      yield* Metric.increment(paymentsCreated)
      yield* logged("payment awaiting the buyer", payment, { reference: inquiry.reference })
      return {
        paymentId: payment.id,
        merchantOrderId,
        reference: inquiry.reference,
        paymentUrl: inquiry.paymentUrl,
        packageId: pkg.id,
        amount: pkg.amount,
        credits: pkg.credits
      }
    })

    const recordCallback = (
      fields: CallbackFields,
      address: string | undefined,
      outcome: string,
      payment: { readonly id: string } | undefined
    ) =>
      sql`
        INSERT INTO payment_callbacks (payment_id, merchant_order_id, source_address, outcome, fields)
        VALUES (${payment?.id ?? null}, ${typeof fields["merchantOrderId"] === "string" ? fields["merchantOrderId"].slice(0, 200) : null},
                ${address ?? null}, ${outcome}, ${JSON.stringify(auditFields(fields))}::jsonb)`.pipe(
        Effect.catchAll((error) => Effect.logError("payment callback could not be recorded", { error: String(error) }))
      )

    /**
     * One callback from Duitku, in this order: its source, its merchant code and signature (before
     * anything is looked up), its amount against the stored payment, then the transition. Every
     * callback is recorded with its outcome. Duplicates and callbacks of settled payments answer
     * with the payment's state (200), so the gateway stops retrying.
     */
    const handleCallback = Effect.fn("Payments.handleCallback")(function*(fields: CallbackFields, origin: CallbackOrigin) {
      const verdict = checkSource(origin)
      const address = verdict.address
      const refuse = <E>(reason: string, error: E, payment?: { readonly id: string }) =>
        Effect.zipRight(
          Effect.zipRight(rejected(reason), recordCallback(fields, address, `rejected:${reason}`, payment)),
          Effect.zipRight(
            Effect.logWarning("payment callback refused", {
              reason,
              address,
              merchantOrderId: typeof fields["merchantOrderId"] === "string" ? fields["merchantOrderId"].slice(0, 100) : undefined
            }),
            Effect.fail(error)
          )
        )
      if (verdict._tag === "Refused") return yield* refuse("source", new CallbackSourceRefused({ message: "Callbacks are accepted only from the payment gateway" }))
      const creds = yield* configured
      const text = (name: string) => {
        const value = fields[name]
        return typeof value === "number" ? String(value) : value
      }
      const merchantCode = text("merchantCode")
      const amountText = text("amount")
      const merchantOrderId = text("merchantOrderId")
      const signature = text("signature") ?? ""
      const resultCode = text("resultCode")
      if (merchantCode === undefined || amountText === undefined || merchantOrderId === undefined || resultCode === undefined) {
        return yield* refuse("malformed", new InvalidCallback({ message: "merchantCode, amount, merchantOrderId, resultCode and signature are required" }))
      }
      if (merchantCode !== creds.merchantCode) {
        return yield* refuse("merchant_code", new InvalidSignature({ message: "The callback does not verify" }))
      }
      const expected = callbackSignature(creds.merchantCode, amountText, merchantOrderId, creds.apiKey)
      if (!signatureMatches(signature, expected)) {
        return yield* refuse("signature", new InvalidSignature({ message: "The callback does not verify" }))
      }
      const amount = parseAmount(amountText)
      if (amount === undefined) return yield* refuse("malformed", new InvalidCallback({ message: "amount is not a whole rupiah amount" }))
      const found = yield* paymentBy("merchant_order_id", merchantOrderId)
      if (Option.isNone(found)) return yield* refuse("unknown_order", new PaymentNotFound({ message: "No such payment" }))
      const payment = found.value
      if (amount !== payment.amount) {
        return yield* refuse("amount", new AmountMismatch({ message: "The amount does not match the payment" }), payment)
      }
      const paymentCode = text("paymentCode")
      let outcome: string
      if (resultCode === CALLBACK_SUCCESS) {
        if (payment.status === "success") {
          outcome = "duplicate"
        } else {
          if (settings.verifyStatus) {
            const status = yield* duitku.status(merchantOrderId).pipe(
              Effect.tapError(() => recordCallback(fields, address, "error:status_unavailable", payment))
            )
            const confirmedAmount = status.amount === undefined ? payment.amount : parseAmount(status.amount)
            if (status.statusCode !== STATUS_SUCCESS || confirmedAmount !== payment.amount) {
              return yield* refuse("unconfirmed", new StatusNotConfirmed({ message: "The gateway does not confirm this payment yet" }), payment)
            }
          }
          outcome = (yield* settlePaid(payment, paymentCode)) ? "granted" : "duplicate"
          if (outcome === "duplicate" && payment.status === "failed") {
            // Money arrived for a payment closed as failed (its inquiry timed out, say): never granted silently, never lost.
            outcome = "paid_after_failure"
            yield* Effect.logError("paid callback for a failed payment; needs an operator", {
              paymentId: payment.id,
              merchantOrderId: payment.merchantOrderId
            })
          }
        }
      } else if (resultCode === CALLBACK_FAILED) {
        outcome = (yield* settleFailed(payment, `gateway reported resultCode ${resultCode}`)) ? "failed" : "duplicate"
      } else {
        outcome = "ignored"
        yield* logged("payment callback with an unknown resultCode left the payment as it was", payment, { resultCode: resultCode.slice(0, 20) })
      }
      yield* recordCallback(fields, address, outcome, payment)
      const current = yield* paymentBy("id", payment.id)
      return { merchantOrderId, status: Option.match(current, { onNone: () => payment.status, onSome: (p) => p.status }), outcome }
    })

    /** The caller's own payment; anyone else's is "not found", exactly like a missing one. */
    const statusOf = Effect.fn("Payments.status")(function*(userId: string, merchantOrderId: string) {
      const found = yield* paymentBy("merchant_order_id", merchantOrderId)
      if (Option.isNone(found) || found.value.userId !== userId) return yield* new PaymentNotFound({ message: "No such payment" })
      return found.value
    })

    const list = Effect.fn("Payments.list")(function*(filter: { readonly status?: PaymentStatus | undefined; readonly limit: number; readonly offset: number }) {
      const rows = filter.status === undefined
        ? yield* sql`SELECT * FROM payments ORDER BY created_at DESC, id LIMIT ${filter.limit} OFFSET ${filter.offset}`
        : yield* sql`SELECT * FROM payments WHERE status = ${filter.status} ORDER BY created_at DESC, id LIMIT ${filter.limit} OFFSET ${filter.offset}`
      return yield* decodePayments(rows)
    }, Effect.orDie)

    const details = Effect.fn("Payments.details")(function*(paymentId: string) {
      const found = yield* paymentBy("id", paymentId)
      if (Option.isNone(found)) return yield* new PaymentNotFound({ message: "No such payment" })
      const callbacks = yield* sql`
        SELECT id::text AS id, outcome, source_address, fields, received_at FROM payment_callbacks
        WHERE payment_id = ${paymentId} ORDER BY id`.pipe(Effect.flatMap(decodeCallbacks), Effect.orDie)
      return { payment: found.value, callbacks }
    })

    const expirePast = sql`
      UPDATE payments SET status = 'expired', updated_at = now()
      WHERE status = 'pending' AND expires_at < now()
      RETURNING id, merchant_order_id`.pipe(
      Effect.orDie,
      Effect.tap((rows) =>
        Effect.forEach(rows, (row) =>
          Effect.zipRight(
            Metric.increment(paymentsExpired),
            logged("payment expired", { id: String(row["id"]), merchantOrderId: String(row["merchant_order_id"]) })
          ))
      ),
      Effect.map((rows) => rows.length)
    )

    /**
     * The periodic job's work: with DUITKU_VERIFY_STATUS and credentials, asks the status API about
     * pending payments older than a minute (oldest first) and settles what it reports paid or failed;
     * then expires pending payments past their expiry. A gateway error leaves a payment to the next run.
     */
    const maintain = Effect.fn("Payments.maintain")(function*() {
      let succeeded = 0
      let failed = 0
      if (settings.verifyStatus && Option.isSome(credentials)) {
        const pending = yield* sql`
          SELECT * FROM payments WHERE status = 'pending' AND created_at < now() - make_interval(secs => ${RECONCILE_MIN_AGE_SECONDS})
          ORDER BY created_at LIMIT ${MAINTENANCE_BATCH}`.pipe(Effect.flatMap(decodePayments), Effect.orDie)
        for (const payment of pending) {
          const status = yield* Effect.either(duitku.status(payment.merchantOrderId))
          if (status._tag === "Left") {
            yield* logged("reconciliation: status unavailable", payment, { reason: status.left.reason })
            continue
          }
          const reported = status.right
          if (reported.statusCode === STATUS_SUCCESS) {
            const amount = reported.amount === undefined ? payment.amount : parseAmount(reported.amount)
            if (amount !== payment.amount) {
              yield* Effect.logError("reconciliation: the gateway reports another amount; left for an operator", {
                paymentId: payment.id,
                merchantOrderId: payment.merchantOrderId
              })
              continue
            }
            if (yield* settlePaid(payment, undefined)) succeeded++
          } else if (reported.statusCode === STATUS_FAILED) {
            if (yield* settleFailed(payment, "gateway status reported failed")) failed++
          }
        }
      }
      const expired = yield* expirePast
      return { expired, succeeded, failed } satisfies MaintenanceResult
    })

    return { packages, create, handleCallback, status: statusOf, list, details, maintain }
  })
}) {}
