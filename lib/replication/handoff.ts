import { assertPositiveIntegers } from '../assert.js'
import type { NodeId } from '../clock/version.js'
import type { Logger } from '../log/logger.js'
import type { Clock, TimerHandle } from '../runtime/clock.js'
import type { Random } from '../runtime/random.js'
import { backoffDelayMs } from '../transport/backoff.js'
import type { HintStore } from './hints.js'
import { MAX_RECORDS_PER_WRITE, type WireEntry } from './messages.js'

/** Most bytes of values in one handoff batch by default: well under the peer transport's frame limit. */
export const DEFAULT_HANDOFF_BATCH_BYTES = 1024 * 1024
/** Batches delivered to one owner per round by default; the rest waits for the next round. */
export const DEFAULT_HANDOFF_BATCHES_PER_ROUND = 16
/** Longest wait before retrying an owner whose deliveries keep failing, by default. */
export const DEFAULT_HANDOFF_RETRY_CAP_MS = 60_000

export interface HintedHandoffOptions {
  readonly hints: HintStore
  /** Sends hints to their owner; resolves once the owner acknowledged them, rejects on failure. */
  readonly deliver: (owner: NodeId, entries: WireEntry[]) => Promise<void>
  /** Membership's view: only owners it considers alive are handed their hints. */
  readonly isAlive: (owner: NodeId) => boolean
  /** Pause between two rounds, in ms. */
  readonly intervalMs: number
  /** Most hints per delivery (≤ MAX_RECORDS_PER_WRITE). */
  readonly batchSize: number
  /** Most value bytes per delivery (one oversized hint still goes alone); default DEFAULT_HANDOFF_BATCH_BYTES. */
  readonly maxBatchBytes?: number
  /** Most deliveries to one owner per round; default DEFAULT_HANDOFF_BATCHES_PER_ROUND. */
  readonly maxBatchesPerRound?: number
  /** First retry delay after a failed delivery, doubled per failure; default intervalMs. */
  readonly retryBaseMs?: number
  /** Cap of the retry delay; default DEFAULT_HANDOFF_RETRY_CAP_MS. */
  readonly retryCapMs?: number
  /** Round timer and retry backoff. */
  readonly clock: Clock
  /** Retry jitter. */
  readonly random: Random
  readonly log: Logger
  /** Told how many hints an owner acknowledged (and were deleted). */
  readonly onDelivered?: (count: number) => void
  /** Told how many hints expired unsent (hint window passed). */
  readonly onDropped?: (count: number) => void
}

interface Backoff {
  /** Consecutive failed deliveries. */
  failures: number
  /** clock.nowMs() before which the owner is not tried again. */
  retryAtMs: number
}

/**
 * Hands hints to their owners once membership says they are alive: every intervalMs, and at
 * once when told an owner came back (ownerAlive). One delivery in flight per owner; a failure
 * backs that owner off (exponential with full jitter, capped) without holding up the others.
 * Hints are deleted only after the owner acknowledged them, so a crash or failure at any point
 * delivers them again at worst, which apply-if-newer makes harmless.
 */
export class HintedHandoff {
  private readonly maxBatchBytes: number
  private readonly maxBatchesPerRound: number
  private readonly retryBaseMs: number
  private readonly retryCapMs: number
  /** Owners being drained, each by one promise that never rejects. */
  private readonly draining = new Map<NodeId, Promise<void>>()
  private readonly backoff = new Map<NodeId, Backoff>()
  private timer: TimerHandle | undefined
  /** The round in progress, if any; never rejects. */
  private round: Promise<void> | undefined
  private stopped = true

  constructor(private readonly options: HintedHandoffOptions) {
    this.maxBatchBytes = options.maxBatchBytes ?? DEFAULT_HANDOFF_BATCH_BYTES
    this.maxBatchesPerRound = options.maxBatchesPerRound ?? DEFAULT_HANDOFF_BATCHES_PER_ROUND
    this.retryBaseMs = options.retryBaseMs ?? options.intervalMs
    this.retryCapMs = options.retryCapMs ?? DEFAULT_HANDOFF_RETRY_CAP_MS
    assertPositiveIntegers({ intervalMs: options.intervalMs, batchSize: options.batchSize, maxBatchBytes: this.maxBatchBytes, maxBatchesPerRound: this.maxBatchesPerRound, retryBaseMs: this.retryBaseMs, retryCapMs: this.retryCapMs })
    if (options.batchSize > MAX_RECORDS_PER_WRITE) throw new RangeError(`batchSize must be at most ${MAX_RECORDS_PER_WRITE} (one replica write), got ${options.batchSize}`)
  }

  /** Runs a round every intervalMs until stop(). */
  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.schedule()
  }

  /** Stops the rounds and waits for the deliveries in flight (and their removals) to finish. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer)
    this.timer = undefined
    await this.round
    await Promise.all(this.draining.values())
  }

  /** Membership saw the owner come back: forget its failures and deliver its hints now. */
  ownerAlive(owner: NodeId): void {
    if (this.stopped) return
    this.backoff.delete(owner)
    this.drain(owner)
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined
      this.round = this.runRound()
        .catch((error: unknown) => this.options.log.error({ err: error }, 'hinted handoff round failed'))
        .finally(() => {
          this.round = undefined
          this.schedule()
        })
    }, this.options.intervalMs)
  }

  private async runRound(): Promise<void> {
    const dropped = await this.options.hints.dropExpired()
    if (dropped > 0) {
      this.options.log.warn({ dropped }, 'hints expired before their owners came back; anti-entropy will repair those replicas')
      this.options.onDropped?.(dropped)
    }
    const owners = new Set(this.options.hints.owners())
    for (const owner of this.backoff.keys()) {
      if (!owners.has(owner)) this.backoff.delete(owner)
    }
    for (const owner of owners) this.drain(owner)
  }

  /** Starts draining the owner's hints unless it is already being drained. */
  private drain(owner: NodeId): void {
    if (this.stopped || this.draining.has(owner)) return
    const run = this.deliverBatches(owner)
      .catch((error: unknown) => this.failed(owner, error))
      .finally(() => { this.draining.delete(owner) })
    this.draining.set(owner, run)
  }

  /**
   * Up to maxBatchesPerRound deliveries, one at a time, while hints remain and the owner is alive
   * and not backed off. Async from the start so a throwing callback becomes a logged failure.
   */
  private async deliverBatches(owner: NodeId): Promise<void> {
    const { hints, deliver, batchSize } = this.options
    const backoff = this.backoff.get(owner)
    if (backoff !== undefined && this.options.clock.nowMs() < backoff.retryAtMs) return
    for (let batches = 0; batches < this.maxBatchesPerRound; batches++) {
      if (this.stopped || !this.options.isAlive(owner)) return
      const { ids, entries } = hints.take(owner, batchSize, this.maxBatchBytes)
      if (entries.length === 0) return
      await deliver(owner, entries)
      await hints.remove(ids)
      this.backoff.delete(owner)
      this.options.onDelivered?.(entries.length)
      this.options.log.debug({ owner, delivered: entries.length, pending: hints.pending(owner).count }, 'handed hints off')
    }
  }

  private failed(owner: NodeId, error: unknown): void {
    const failures = (this.backoff.get(owner)?.failures ?? 0) + 1
    const delayMs = backoffDelayMs(failures - 1, this.retryBaseMs, this.retryCapMs, () => this.options.random.next())
    this.backoff.set(owner, { failures, retryAtMs: this.options.clock.nowMs() + delayMs })
    this.options.log.warn({ owner, failures, retryInMs: delayMs, err: error }, 'hint handoff failed; will retry')
  }
}
