import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { assertPositiveIntegers } from '../assert.js'
import { hlcWallMs, type Version } from '../clock/version.js'
import type { Store } from './store.js'
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js'
import { isTombstone, type StoredRecord } from './record.js'
import { CorruptRecordError } from './record-codec.js'

export interface TombstoneCollectorOptions {
  /** Pause between two background sweeps, in ms (config store.gcIntervalMs). */
  readonly intervalMs: number
  /** Records examined per step at most (config store.gcBatchSize). */
  readonly batchSize: number
  /** How long a tombstone (or an expired record) is kept before it is collected, in ms. */
  readonly tombstoneGraceMs: number
  /** Wall clock in ms. */
  readonly nowMs: () => number
  /**
   * True when every other replica of the key's partition is known to hold this record (or newer,
   * or nothing where it is past its grace) — lib/antientropy/certificates.ts. Past the grace
   * alone is not enough: a replica cut off since before the delete may still hold the value.
   */
  readonly heldByEveryReplica: (key: string) => boolean
  /** Runs the sweep timer; default systemClock (a simulation passes its fake clock). */
  readonly clock?: Clock
  /** Told after each step that collected something, once per kind (for metrics). */
  readonly onCollected?: (kind: CollectedKind, count: number) => void
  /** Told after each complete sweep how many records past their grace wait for a replica. */
  readonly onSwept?: (waiting: number) => void
  /**
   * The hash a record contributes to the node's Merkle digests (MerkleForest.recordHash): with
   * it, waitingDigest() tells which part of the store digest is records past their grace.
   */
  readonly recordHash?: (key: string, version: Version) => bigint
  /** Told when a background sweep fails; the next sweep starts after intervalMs as usual. */
  readonly onError?: (error: unknown) => void
}

export interface CollectedCounts {
  readonly tombstones: number
  readonly expired: number
  /** Records past their grace kept because a replica may still lack them (heldByEveryReplica). */
  readonly waiting: number
}

export interface GcStepResult extends CollectedCounts {
  /** Records examined. */
  readonly scanned: number
  /** True when the step reached the end of the store (the next one starts from the beginning). */
  readonly wrapped: boolean
}

/** Matches the `kind` label of hearsay_store_gc_collected_total. */
export type CollectedKind = 'tombstone' | 'expired'

/**
 * Collects dead records in the background: every intervalMs one sweep over the store, in steps
 * of at most batchSize records with a yield between steps, so it never holds the event loop or a
 * write transaction for long. It collects tombstones whose version is older than the grace period,
 * and expired records likewise once expiresAtMs + grace has passed — and only once every other
 * replica is known to hold the record (options.heldByEveryReplica), so that no partition, however
 * long, lets a replica that missed the delete hand the value back (ScyllaDB's repair-based
 * tombstone GC). The grace bounds how soon, the replicas decide whether.
 *
 * Why expired records wait out the grace too: an expired record hides older versions just like
 * a tombstone. Dropped early, a stale replica's older live version would flow back through
 * anti-entropy and resurrect the key.
 *
 * Deletion is conditional on the version still being the one examined (KvStore.deleteIfVersion),
 * so a write that lands between the walk and the delete survives.
 */
export class TombstoneCollector {
  /** Last key examined; undefined = the next step starts at the beginning. */
  private cursor: string | undefined
  private timer: TimerHandle | undefined
  /** Steps run one at a time, background and sweepOnce alike. */
  private queue: Promise<unknown> = Promise.resolve()
  private stopped = true
  /** The background sweep in progress, if any. */
  private backgroundSweep: Promise<void> | undefined
  private totalTombstones = 0
  private totalExpired = 0
  /** Records waiting for a replica at the end of the last complete sweep. */
  private lastWaiting = 0
  /** XOR of their record hashes (see waitingDigest). */
  private lastWaitingDigest = 0n
  /** The same, for the sweep in progress. */
  private sweepDigest = 0n

  constructor(private readonly store: Store, private readonly options: TombstoneCollectorOptions) {
    assertPositiveIntegers({ intervalMs: options.intervalMs, batchSize: options.batchSize })
    if (!Number.isSafeInteger(options.tombstoneGraceMs) || options.tombstoneGraceMs < 0) {
      throw new RangeError(`tombstoneGraceMs must be a non-negative integer, got ${options.tombstoneGraceMs}`)
    }
  }

  /** Sweeps the store every intervalMs until stop(). */
  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.schedule()
  }

  /** Stops the background sweeps, waiting for the step in progress (not the whole sweep). */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) (this.options.clock ?? systemClock).clearTimeout(this.timer)
    this.timer = undefined
    await this.backgroundSweep
  }

  /** Examines the next batchSize records after the cursor and collects the dead ones. */
  step(nowMs: number): Promise<GcStepResult> {
    return this.exclusive(() => this.runStep(nowMs))
  }

  /** One full pass over the store (what the background runs every intervalMs). */
  sweepOnce(nowMs: number): Promise<CollectedCounts> {
    return this.sweep(nowMs, () => true)
  }

  /**
   * XOR of the record hashes of the records past their grace that the last complete sweep kept.
   * Such records do not travel to a peer lacking the key, so two replicas in agreement can still
   * differ by them until collection: the store digest XOR this is what they will agree on.
   */
  waitingDigest(): bigint {
    return this.lastWaitingDigest
  }

  /** Everything collected since construction. */
  totals(): CollectedCounts {
    return { tombstones: this.totalTombstones, expired: this.totalExpired, waiting: this.lastWaiting }
  }

  /**
   * A pass from the beginning of the store to its end, step by step, yielding to the event loop
   * between steps. Bounded by the record count at the start: records added meanwhile may be left
   * for the next pass.
   */
  private async sweep(nowMs: number, keepGoing: () => boolean): Promise<CollectedCounts> {
    const maxSteps = Math.ceil(this.store.stats().keys / this.options.batchSize) + 1
    let tombstones = 0
    let expired = 0
    let waiting = 0
    await this.exclusive(async () => {
      this.cursor = undefined
      this.sweepDigest = 0n
    })
    for (let steps = 0; steps < maxSteps && keepGoing(); steps++) {
      const result = await this.step(nowMs)
      tombstones += result.tombstones
      expired += result.expired
      waiting += result.waiting
      if (result.wrapped) {
        this.lastWaiting = waiting
        this.lastWaitingDigest = this.sweepDigest
        this.options.onSwept?.(waiting)
        break
      }
      await yieldToEventLoop()
    }
    return { tombstones, expired, waiting }
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = (this.options.clock ?? systemClock).setTimeout(() => {
      this.backgroundSweep = this.sweep(this.options.nowMs(), () => !this.stopped)
        .then(() => undefined, (error: unknown) => this.options.onError?.(error))
        .finally(() => {
          this.backgroundSweep = undefined
          this.schedule()
        })
    }, this.options.intervalMs)
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.catch(() => undefined).then(task)
    this.queue = run
    return run
  }

  private async runStep(nowMs: number): Promise<GcStepResult> {
    const { batchSize } = this.options
    const examined: { key: string; record: StoredRecord }[] = []
    try {
      for (const entry of this.store.rawRange({ after: this.cursor, limit: batchSize })) examined.push(entry)
    } catch (error) {
      // Step over a record that does not decode instead of failing on it forever.
      if (error instanceof CorruptRecordError) this.cursor = error.key
      throw error
    }
    const candidates: { key: string; version: Version; kind: CollectedKind }[] = []
    let waiting = 0
    for (const { key, record } of examined) {
      const kind = this.collectible(record, nowMs)
      if (kind === undefined) continue
      if (this.options.heldByEveryReplica(key)) {
        candidates.push({ key, version: record.version, kind })
      } else {
        waiting++
        if (this.options.recordHash !== undefined) this.sweepDigest ^= this.options.recordHash(key, record.version)
      }
    }
    const removed = candidates.length === 0 ? [] : await this.store.deleteIfVersion(candidates)
    let tombstones = 0
    let expired = 0
    candidates.forEach(({ kind }, i) => {
      if (!removed[i]) return
      if (kind === 'tombstone') tombstones++
      else expired++
    })
    const wrapped = examined.length < batchSize
    this.cursor = wrapped ? undefined : examined[examined.length - 1]?.key
    this.totalTombstones += tombstones
    this.totalExpired += expired
    if (tombstones > 0) this.options.onCollected?.('tombstone', tombstones)
    if (expired > 0) this.options.onCollected?.('expired', expired)
    return { scanned: examined.length, tombstones, expired, waiting, wrapped }
  }

  private collectible(record: StoredRecord, nowMs: number): CollectedKind | undefined {
    return collectibleKind(record, nowMs, this.options.tombstoneGraceMs)
  }
}

/**
 * Whether GC may remove a record: a tombstone or an expired record whose grace has passed. Such
 * records also do not travel in anti-entropy (a peer that already collected them would only
 * collect them again).
 */
export function collectibleKind(record: StoredRecord, nowMs: number, tombstoneGraceMs: number): CollectedKind | undefined {
  if (isTombstone(record)) return hlcWallMs(record.version.hlc) + tombstoneGraceMs <= nowMs ? 'tombstone' : undefined
  if (record.expiresAtMs !== undefined && record.expiresAtMs + tombstoneGraceMs <= nowMs) return 'expired'
  return undefined
}
