/**
 * Facts of Duitku's public API this code relies on, each with where it comes from.
 * - Base URLs and paths: docs.duitku.com/api/en ("Request Transaction" and "Check Transaction"); the
 *   same URLs appear in Duitku's own sample server (github.com/duitkupg/duitku-ios-sdk, Webserver/
 *   requestTransaction.php and checkTransaction.php) and in the old backend (spec lumiku.md 2.10).
 * - Signatures: inquiry MD5(merchantCode + merchantOrderId + paymentAmount + apiKey); transaction
 *   status MD5(merchantCode + merchantOrderId + apiKey); callback MD5(merchantCode + amount +
 *   merchantOrderId + apiKey) (docs.duitku.com/api/en, "Callback"; reliability guide section 4).
 * - The callback is an HTTP POST of form fields (application/x-www-form-urlencoded): merchantCode,
 *   amount, merchantOrderId, productDetail, additionalParam, paymentCode, resultCode, merchantUserId,
 *   reference, signature, publisherOrderId, spUserHash, settlementDate, issuerCode. resultCode "00"
 *   is success, "01" failed (docs.duitku.com/api/en, "Callback"). The old backend read `statusCode`,
 *   which callbacks do not carry (spec lumiku.md 2.10).
 * - Transaction status answers statusCode "00" success, "01" pending (process), "02" failed or
 *   cancelled (docs.duitku.com/api/en, "Check Transaction").
 * - Callback source addresses per environment: spec lumiku.md 2.10, matching the list Duitku
 *   publishes in its docs ("Callback", IP whitelist).
 */
export type DuitkuEnvironment = "sandbox" | "production"

export const duitkuBaseUrls: Readonly<Record<DuitkuEnvironment, string>> = {
  production: "https://passport.duitku.com",
  sandbox: "https://sandbox.duitku.com"
}

export const INQUIRY_PATH = "/webapi/api/merchant/v2/inquiry"
export const STATUS_PATH = "/webapi/api/merchant/transactionStatus"

export const duitkuCallbackAddresses: Readonly<Record<DuitkuEnvironment, ReadonlyArray<string>>> = {
  production: [
    "182.23.85.8",
    "182.23.85.9",
    "182.23.85.10",
    "182.23.85.13",
    "182.23.85.14",
    "103.177.101.184",
    "103.177.101.185",
    "103.177.101.186",
    "103.177.101.189",
    "103.177.101.190"
  ],
  sandbox: ["182.23.85.11", "182.23.85.12", "103.177.101.187", "103.177.101.188"]
}

/** Callback resultCode values. */
export const CALLBACK_SUCCESS = "00"
export const CALLBACK_FAILED = "01"

/** Transaction status statusCode values. */
export const STATUS_SUCCESS = "00"
export const STATUS_PENDING = "01"
export const STATUS_FAILED = "02"
