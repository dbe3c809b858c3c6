import { BlockList, isIP } from "node:net"

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

export const makeClientAddressResolver = (trustedProxies: ReadonlyArray<string>): ClientAddressResolver => {
  const trusted = new BlockList()
  for (const entry of trustedProxies) {
    const [address = "", prefix] = entry.split("/")
    const family = isIP(address) === 6 ? "ipv6" : "ipv4"
    if (isIP(address) === 0) throw new Error(`TRUSTED_PROXIES: "${entry}" is not an IP address or CIDR`)
    if (prefix === undefined) trusted.addAddress(address, family)
    else trusted.addSubnet(address, Number(prefix), family)
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
