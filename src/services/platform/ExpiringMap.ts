/**
 * A Map whose entries expire, bounded to `maxKeys`: the in-process fallback stores (local rate
 * limits, local login lockout) must not grow without limit while Redis is away, whatever keys
 * clients send. Expired entries are dropped when read and swept (at most once a second) when the
 * map is full; if it is still full, the least recently used entry is evicted (Map keeps insertion
 * order, and every read re-inserts). Eviction forgets a count, so the cap is sized far above the
 * keys a single instance sees in a window.
 *
 * Hand-written rather than lru-cache: ~40 lines, and the stores need an expiry that each write
 * sets explicitly (a window end), not a TTL refreshed per entry.
 */
export class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>()
  private lastSweep = 0

  constructor(readonly maxKeys: number) {}

  get size(): number {
    return this.entries.size
  }

  get(key: string, now: number): { readonly value: V; readonly expiresAt: number } | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    if (entry.expiresAt <= now) return undefined
    this.entries.set(key, entry)
    return entry
  }

  set(key: string, value: V, expiresAt: number, now: number): void {
    this.entries.delete(key)
    if (this.entries.size >= this.maxKeys) {
      if (now - this.lastSweep >= 1_000) {
        this.lastSweep = now
        for (const [k, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(k)
      }
      while (this.entries.size >= this.maxKeys) {
        const oldest = this.entries.keys().next()
        if (oldest.done === true) break
        this.entries.delete(oldest.value)
      }
    }
    this.entries.set(key, { value, expiresAt })
  }
}
