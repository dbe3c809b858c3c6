import { isIP } from "node:net"
import { Option } from "effect"
import type { AppConfigShape } from "../platform/AppConfig.js"
import { makeClientAddressResolver } from "../platform/clientAddress.js"
import { duitkuCallbackAddresses } from "./duitkuFacts.js"

/** Where a callback came from, as the HTTP layer saw it. */
export interface CallbackOrigin {
  /** The socket's peer address. */
  readonly peer: string | undefined
  readonly forwardedFor: string | undefined
  readonly forwardedProto: string | undefined
}

export type SourceVerdict =
  | { readonly _tag: "Allowed"; readonly address: string | undefined }
  | { readonly _tag: "Refused"; readonly address: string | undefined; readonly reason: string }

const normalize = (address: string) => {
  const trimmed = address.trim()
  return trimmed.toLowerCase().startsWith("::ffff:") && isIP(trimmed.slice(7)) === 4 ? trimmed.slice(7) : trimmed
}

/**
 * Decides whether a callback may come from where it came. The address is the peer's, or the
 * X-Forwarded-For hop appended by a TRUSTED_PROXIES proxy (walked from the right, never the
 * leftmost entry, which the caller writes). It must be one of Duitku's published callback
 * addresses of DUITKU_ENV (or DUITKU_CALLBACK_IPS). In production a callback relayed by a trusted
 * proxy must have reached the proxy over https (X-Forwarded-Proto, believed only from the proxy).
 */
export const makeCallbackSourceCheck = (config: AppConfigShape) => {
  const resolver = makeClientAddressResolver(config.http.trustedProxies)
  const allowed = new Set(
    Option.getOrElse(config.duitku.callbackIps, () => duitkuCallbackAddresses[config.duitku.environment]).map(normalize)
  )
  return (origin: CallbackOrigin): SourceVerdict => {
    const address = resolver.resolve(origin.peer, origin.forwardedFor)
    // The resolver moves off the peer only when the peer is a trusted proxy that relayed the request.
    const relayed = origin.peer !== undefined && address !== normalize(origin.peer)
    if (config.env === "production" && relayed) {
      const proto = origin.forwardedProto?.split(",").at(-1)?.trim().toLowerCase()
      if (proto !== "https") return { _tag: "Refused", address, reason: "the callback reached the proxy over plain http" }
    }
    if (!config.duitku.callbackIpCheck) return { _tag: "Allowed", address }
    if (address === undefined || !allowed.has(address)) {
      return { _tag: "Refused", address, reason: "the callback did not come from a Duitku callback address" }
    }
    return { _tag: "Allowed", address }
  }
}
