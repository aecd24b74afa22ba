/**
 * The transmit-limited broadcast queue (SWIM §4.1 infection-style dissemination; memberlist
 * queue.go). Each queued update is piggybacked on outgoing messages until it has been sent
 * retransmitMult × ceil(log10(n + 1)) times — enough for an epidemic to reach all n members with
 * high probability, and no more. A newer update about the same member replaces the older one,
 * and the least-transmitted updates go first so fresh news overtakes old news.
 */

interface QueueEntry<T> {
  readonly key: string
  readonly payload: T
  readonly sizeBytes: number
  transmits: number
}

export class BroadcastQueue<T> {
  readonly #retransmitMult: number
  /** Bound on queued updates; past it the most-transmitted entry is dropped (memberlist Prune). */
  readonly #maxEntries: number
  readonly #byKey = new Map<string, QueueEntry<T>>()
  /** Entries by transmit count; within a bucket the most recently added is sent first. */
  readonly #buckets: QueueEntry<T>[][] = []
  /** Smallest update ever queued: once less room than this is left, no other update can fit. */
  #minSizeBytes = Infinity

  constructor(options: { retransmitMult: number; maxEntries: number }) {
    this.#retransmitMult = options.retransmitMult
    this.#maxEntries = options.maxEntries
  }

  get size(): number {
    return this.#byKey.size
  }

  /** Whether an update under `key` is still waiting to be transmitted (not done, not replaced). */
  has(key: string): boolean {
    return this.#byKey.has(key)
  }

  /** Queues `payload` under `key` (a member id), replacing any older update about it. */
  enqueue(key: string, payload: T, sizeBytes: number): void {
    this.#remove(key)
    if (this.#byKey.size >= this.#maxEntries) this.#dropMostTransmitted()
    this.#minSizeBytes = Math.min(this.#minSizeBytes, sizeBytes)
    const entry: QueueEntry<T> = { key, payload, sizeBytes, transmits: 0 }
    this.#byKey.set(key, entry)
    this.#bucket(0).push(entry)
  }

  /**
   * Takes up to `maxCount` updates whose sizes add up to at most `maxBytes`, fewest transmits
   * first, and counts one transmission for each; updates that reach the limit leave the queue.
   */
  take(memberCount: number, maxCount: number, maxBytes: number): T[] {
    const limit = retransmitLimit(this.#retransmitMult, memberCount)
    const chosen: QueueEntry<T>[] = []
    let bytesLeft = maxBytes
    for (const bucket of this.#buckets) {
      for (let i = bucket.length - 1; i >= 0 && chosen.length < maxCount && bytesLeft >= this.#minSizeBytes; i--) {
        const entry = bucket[i]!
        if (entry.sizeBytes > bytesLeft) continue
        chosen.push(entry)
        bytesLeft -= entry.sizeBytes
      }
      if (chosen.length >= maxCount || bytesLeft < this.#minSizeBytes) break
    }
    for (const entry of chosen) {
      this.#detach(entry)
      entry.transmits += 1
      if (entry.transmits >= limit) this.#byKey.delete(entry.key)
      else this.#bucket(entry.transmits).push(entry)
    }
    return chosen.map(entry => entry.payload)
  }

  #bucket(transmits: number): QueueEntry<T>[] {
    while (this.#buckets.length <= transmits) this.#buckets.push([])
    return this.#buckets[transmits]!
  }

  #detach(entry: QueueEntry<T>): void {
    const bucket = this.#bucket(entry.transmits)
    // Entries are taken from the end of their bucket, so search from there.
    const index = bucket.lastIndexOf(entry)
    if (index >= 0) bucket.splice(index, 1)
  }

  #remove(key: string): void {
    const entry = this.#byKey.get(key)
    if (entry === undefined) return
    this.#detach(entry)
    this.#byKey.delete(key)
  }

  #dropMostTransmitted(): void {
    for (let t = this.#buckets.length - 1; t >= 0; t--) {
      const oldest = this.#buckets[t]![0]
      if (oldest !== undefined) {
        this.#remove(oldest.key)
        return
      }
    }
  }
}

/** memberlist retransmitLimit: retransmitMult × ceil(log10(n + 1)). */
export function retransmitLimit(retransmitMult: number, memberCount: number): number {
  return retransmitMult * Math.ceil(Math.log10(memberCount + 1))
}
