import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { ChangeLog } from '../store/change-log.js'
import type { Clock, TimerHandle } from '../runtime/clock.js'

/**
 * Keeps the change log to watch.retention: every intervalMs it removes the entries that arrived
 * before now − retentionMs, in batches with a yield between them, so a large trim neither holds
 * a write transaction nor the event loop for long.
 */

export interface TrimmerOptions {
  readonly log: ChangeLog
  readonly retentionMs: number
  readonly clock: Clock
  /** Entries removed per transaction. */
  readonly batchSize: number
  readonly onTrimmed?: (removed: number, entries: number) => void
  readonly onError?: (error: unknown) => void
}

/** A trim every quarter of the retention, at most every minute and at least every 100 ms. */
export function trimIntervalMs(retentionMs: number): number {
  return Math.min(60_000, Math.max(100, Math.floor(retentionMs / 4)))
}

export class ChangeLogTrimmer {
  readonly #options: TrimmerOptions
  #timer: TimerHandle | undefined
  #running: Promise<void> | undefined
  #stopped = true

  constructor(options: TrimmerOptions) {
    this.#options = options
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#schedule()
  }

  /** Stops the timer and waits for a trim in progress. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  /** Removes every entry older than the retention now; resolves with the count removed. */
  async trimNow(): Promise<number> {
    const { log, retentionMs, clock, batchSize } = this.#options
    const beforeMs = clock.nowMs() - retentionMs
    let removed = 0
    for (;;) {
      const batch = await log.trim(beforeMs, batchSize)
      removed += batch
      if (batch < batchSize || this.#stopped) break
      await yieldToEventLoop()
    }
    this.#options.onTrimmed?.(removed, log.stats().entries)
    return removed
  }

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#running = this.trimNow()
        .then(() => undefined, (error: unknown) => this.#options.onError?.(error))
        .finally(() => {
          this.#running = undefined
          this.#schedule()
        })
    }, trimIntervalMs(this.#options.retentionMs))
  }
}
