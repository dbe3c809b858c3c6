import { BlockList, isIP } from "node:net"
import { Either } from "effect"

/**
 * Resolves the client address of a request. X-Forwarded-For is walked from the right, and only
 * while the hop that appended an entry is a trusted proxy; the first untrusted hop is the client.
 * Headers that any client can set (X-Real-IP, CF-Connecting-IP, True-Client-IP) are never read.
 * node:net's BlockList does the CIDR matching, so no hand-written address parsing is needed.
 */
export interface ClientAddressResolver {
  readonly resolve: (peer: string | undefined, forwardedFor: string | undefined) => string | undefined
}

const normalize = (address: string): string => {
  const trimmed = address.trim()
  // IPv4-mapped IPv6 (::ffff:1.2.3.4) is how Node reports IPv4 peers on a dual-stack socket.
  return trimmed.toLowerCase().startsWith("::ffff:") && isIP(trimmed.slice(7)) === 4 ? trimmed.slice(7) : trimmed
}

export interface TrustedProxy {
  readonly address: string
  readonly family: "ipv4" | "ipv6"
  /** Absent for a single address. */
  readonly prefix?: number
}

/**
 * One TRUSTED_PROXIES entry: an IPv4/IPv6 address, or one with a `/prefix` of 0-32 (IPv4) or 0-128 (IPv6)
 * written as plain decimal digits. Anything else is refused, rather than read leniently: `Number("")` is 0, so
 * `10.0.0.1/` used to become `/0` and trust every address. node:net's isIP decides what an address is.
 */
export const parseTrustedProxy = (entry: string): Either.Either<TrustedProxy, string> => {
  const problem = (why: string) => Either.left(`entry ${JSON.stringify(entry.slice(0, 100))} ${why}`)
  const parts = entry.split("/")
  if (parts.length > 2) return problem("has more than one \"/\"; expected an address or a CIDR such as 10.0.0.0/8")
  const [address = "", prefixText] = parts
  const version = isIP(address)
  if (version === 0) return problem("is not an IP address or CIDR (expected e.g. 10.0.0.1, 10.0.0.0/8 or fd00::/8)")
  const family = version === 6 ? "ipv6" : "ipv4"
  if (prefixText === undefined) return Either.right({ address, family })
  const max = version === 6 ? 128 : 32
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    return problem(`has an invalid prefix length; expected a whole number from 0 to ${max}`)
  }
  return Either.right({ address, family, prefix: Number(prefixText) })
}

/** Every entry parsed, or one problem per bad entry; shared by the configuration and the resolver. */
export const parseTrustedProxies = (
  entries: ReadonlyArray<string>
): Either.Either<ReadonlyArray<TrustedProxy>, ReadonlyArray<string>> => {
  const proxies: Array<TrustedProxy> = []
  const problems: Array<string> = []
  for (const entry of entries) {
    Either.match(parseTrustedProxy(entry), {
      onLeft: (problem) => problems.push(problem),
      onRight: (proxy) => proxies.push(proxy)
    })
  }
  return problems.length === 0 ? Either.right(proxies) : Either.left(problems)
}

/** `trustedProxies` were validated with the configuration (parseTrustedProxies); a bad one here is a defect. */
export const makeClientAddressResolver = (trustedProxies: ReadonlyArray<string>): ClientAddressResolver => {
  const trusted = new BlockList()
  const parsed = parseTrustedProxies(trustedProxies)
  if (Either.isLeft(parsed)) throw new Error(`TRUSTED_PROXIES: ${parsed.left.join("; ")}`)
  for (const proxy of parsed.right) {
    if (proxy.prefix === undefined) trusted.addAddress(proxy.address, proxy.family)
    else trusted.addSubnet(proxy.address, proxy.prefix, proxy.family)
  }
  const isTrusted = (address: string) => {
    const family = isIP(address)
    return family !== 0 && trusted.check(address, family === 6 ? "ipv6" : "ipv4")
  }
  const none = trustedProxies.length === 0
  return {
    resolve: (peer, forwardedFor) => {
      if (peer === undefined) return undefined
      let client = normalize(peer)
      if (none || forwardedFor === undefined || !isTrusted(client)) return client
      const hops = forwardedFor.split(",")
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = normalize(hops[i]!)
        if (isIP(hop) === 0) return client
        client = hop
        if (!isTrusted(hop)) return client
      }
      return client
    }
  }
}
