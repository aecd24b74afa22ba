import type { Clock, TimerHandle } from '../runtime/clock.js'

/**
 * Requests per second and p99 latency of this node's client API over the last minutes, for the
 * dashboard's sparklines. Each window counts requests into a fixed set of logarithmic latency
 * buckets (a window costs the same memory at 10 or 100,000 requests per second); closing a
 * window turns it into one sample in a ring of `maxSamples`.
 */

/** One closed window. */
export interface RequestSample {
  /** Wall-clock ms at the end of the window. */
  readonly atMs: number
  readonly opsPerSecond: number
  /** Upper bound of the latency bucket holding the 99th percentile; null for a window with no request. */
  readonly p99Ms: number | null
}

export interface RequestSamplerOptions {
  readonly clock: Clock
  /** Length of one window (one sparkline point). */
  readonly intervalMs: number
  /** Samples kept; the oldest falls out of the ring. */
  readonly maxSamples: number
}

/** Smallest latency told apart (10 µs) and the bucket ratio 2^(1/4) (about 19 % wide). */
const FIRST_BUCKET_MS = 0.01
const BUCKETS_PER_DOUBLING = 4
/** 0.01 ms · 2^(100/4) ≈ 335 s: past any request deadline, so the last bucket only clamps. */
const BUCKET_COUNT = 101

export function bucketOf(latencyMs: number): number {
  if (!(latencyMs > FIRST_BUCKET_MS)) return 0
  return Math.min(BUCKET_COUNT - 1, Math.ceil(BUCKETS_PER_DOUBLING * Math.log2(latencyMs / FIRST_BUCKET_MS)))
}

export function bucketUpperMs(bucket: number): number {
  return FIRST_BUCKET_MS * 2 ** (bucket / BUCKETS_PER_DOUBLING)
}

export class RequestSampler {
  readonly #options: RequestSamplerOptions
  readonly #buckets = new Uint32Array(BUCKET_COUNT)
  #count = 0
  readonly #ring: RequestSample[] = []
  #windowStartMs: number
  #timer: TimerHandle | undefined

  constructor(options: RequestSamplerOptions) {
    if (!Number.isSafeInteger(options.intervalMs) || options.intervalMs < 1) throw new RangeError(`intervalMs must be a positive integer, got ${options.intervalMs}`)
    if (!Number.isSafeInteger(options.maxSamples) || options.maxSamples < 1) throw new RangeError(`maxSamples must be a positive integer, got ${options.maxSamples}`)
    this.#options = options
    this.#windowStartMs = options.clock.monotonicMs()
  }

  /** Counts one finished request that took `latencyMs`. */
  observe(latencyMs: number): void {
    this.#buckets[bucketOf(latencyMs)]!++
    this.#count++
  }

  /** Closes a window every intervalMs until stop(). */
  start(): void {
    if (this.#timer !== undefined) return
    const tick = (): void => {
      this.closeWindow()
      this.#timer = this.#options.clock.setTimeout(tick, this.#options.intervalMs)
    }
    this.#timer = this.#options.clock.setTimeout(tick, this.#options.intervalMs)
  }

  stop(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Turns the current window into a sample (the timer does this; tests call it directly). */
  closeWindow(): RequestSample {
    const nowMonotonicMs = this.#options.clock.monotonicMs()
    const elapsedSeconds = Math.max(nowMonotonicMs - this.#windowStartMs, 1) / 1000
    const sample: RequestSample = {
      atMs: this.#options.clock.nowMs(),
      opsPerSecond: this.#count / elapsedSeconds,
      p99Ms: this.#count === 0 ? null : bucketUpperMs(this.#percentileBucket(0.99)),
    }
    this.#ring.push(sample)
    if (this.#ring.length > this.#options.maxSamples) this.#ring.shift()
    this.#buckets.fill(0)
    this.#count = 0
    this.#windowStartMs = nowMonotonicMs
    return sample
  }

  /** The closed windows, oldest first. */
  samples(): readonly RequestSample[] {
    return this.#ring
  }

  #percentileBucket(fraction: number): number {
    const rank = Math.ceil(this.#count * fraction)
    let seen = 0
    for (let bucket = 0; bucket < BUCKET_COUNT; bucket++) {
      seen += this.#buckets[bucket]!
      if (seen >= rank) return bucket
    }
    return BUCKET_COUNT - 1
  }
}
