import { sleep, type Clock } from '../runtime/clock.js'

/**
 * A token bucket over bytes: sync sessions take what they send or receive, so a node catching up
 * cannot crowd out client traffic on the link. Burst = one second of rate. 0 = unlimited.
 */
export class ByteRateLimiter {
  readonly #bytesPerSecond: number
  readonly #clock: Clock
  #tokens: number
  #lastRefillMs: number

  constructor(bytesPerSecond: number, clock: Clock) {
    if (!Number.isSafeInteger(bytesPerSecond) || bytesPerSecond < 0) throw new RangeError(`bytesPerSecond must be a non-negative integer, got ${bytesPerSecond}`)
    this.#bytesPerSecond = bytesPerSecond
    this.#clock = clock
    this.#tokens = bytesPerSecond
    this.#lastRefillMs = clock.nowMs()
  }

  /** Waits until `bytes` may pass. Larger than the burst: waits for the debt to be paid back. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.#bytesPerSecond === 0) return
    this.#refill()
    this.#tokens -= bytes
    if (this.#tokens >= 0) return
    const waitMs = Math.ceil((-this.#tokens / this.#bytesPerSecond) * 1000)
    await sleep(this.#clock, waitMs, signal)
  }

  #refill(): void {
    const now = this.#clock.nowMs()
    const elapsedMs = Math.max(0, now - this.#lastRefillMs)
    this.#lastRefillMs = now
    this.#tokens = Math.min(this.#bytesPerSecond, this.#tokens + (elapsedMs / 1000) * this.#bytesPerSecond)
  }
}

/**
 * Runs `work` over `items` with at most `limit` in flight. The first failure starts no further
 * item and is rethrown once the items in flight have settled, so a caller that sees the rejection
 * knows the work has stopped (a failed sync session no longer writes to the stores).
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failure: { readonly error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      const item = items[next++] as T
      try {
        await work(item)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (failure !== undefined) throw failure.error
}
