import { isSecretKey } from "../platform/redact.js"

/** Callback fields as posted (form values are text; a JSON body may carry numbers). */
export type CallbackFields = Readonly<Record<string, string | number | undefined>>

/** A whole-rupiah amount as Duitku writes it ("150000", sometimes "150000.00"); anything else is not an amount. */
export const parseAmount = (raw: string): number | undefined => {
  const match = /^(\d{1,15})(?:\.0{1,2})?$/.exec(raw)
  return match === null ? undefined : Number(match[1])
}

/** The audit copy of a callback: every field but the signature (and any other key the logger treats as secret), NULs replaced (Postgres refuses them). */
export const auditFields = (fields: CallbackFields): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || isSecretKey(key)) continue
    out[key.replaceAll("\u0000", "\uFFFD").slice(0, 100)] = String(value).replaceAll("\u0000", "\uFFFD").slice(0, 1000)
  }
  return out
}
