import type { Histogram } from 'hdr-histogram-js'
import { createLatencyHistogram, recordLatencyMs, summarizeLatency, type LatencySummaryMs } from './latency.js'

/** Writes whose deliveries are being waited for, at most; beyond it new writes are not tracked (and counted). */
export const MAX_TRACKED_WRITES = 1_000_000

/** What the watchers saw of a load's acknowledged writes. */
export interface FanoutStats {
  readonly watchers: number
  /** Deliveries of the measured acknowledged writes, to all watchers together. */
  readonly events: number
  /** `events` per second of the measured time: the fan-out rate. */
  readonly eventsPerSecond: number
  /** From a write's acknowledgement at the bench to its arrival at a watcher, per delivery. */
  readonly latencyMs: LatencySummaryMs
  /** Deliveries owed (measured acknowledged writes × watchers) that had not arrived when the stats were taken. */
  readonly missed: number
  /** Deliveries that arrived before the bench saw the write's acknowledgement (recorded as 0 ms). */
  readonly beforeAck: number
  /** Measured writes not tracked because MAX_TRACKED_WRITES were pending. */
  readonly untracked: number
}

/** A write on its way to the watchers. */
interface Pending {
  /** performance.now() of the acknowledgement; undefined until it comes. */
  ackedAt: number | undefined
  /** Watchers that delivered it. */
  delivered: number
  /** Of those, the ones that delivered it before the acknowledgement. */
  early: number
  /** Acknowledged during the warm-up: delivered, but not measured. */
  warmup: boolean
}

/**
 * Watch latency for any system: writes are named by an id both the writer's acknowledgement and
 * the watch event carry (hearsay's version, etcd's revision). A change can reach a watcher before
 * the writer hears the acknowledgement (a replica applies it while the coordinator still
 * collects acks, or the leader's watch fires before the client's reply is read): such a delivery
 * counts as 0 ms and is reported apart. Times are performance.now() of this process.
 */
export class FanoutLatency {
  readonly #watchers: number
  readonly #histogram: Histogram = createLatencyHistogram()
  /** id → write in flight to the watchers; removed once every watcher has it. */
  readonly #pending = new Map<string, Pending>()
  #measureFrom = -Infinity
  #events = 0
  #beforeAck = 0
  #untracked = 0

  constructor(watchers: number) {
    if (!Number.isSafeInteger(watchers) || watchers < 1) throw new RangeError(`watchers must be a positive whole number, got ${watchers}`)
    this.#watchers = watchers
  }

  /** Writes issued before `atMs` (performance.now()) are the warm-up: delivered but not measured. */
  measureFrom(atMs: number): void {
    this.#measureFrom = atMs
  }

  /** `startedAtMs`: when the write was issued (default: now), which decides whether it is measured. */
  acked(id: string, startedAtMs?: number): void {
    const now = performance.now()
    const warmup = (startedAtMs ?? now) < this.#measureFrom
    const pending = this.#pending.get(id)
    if (pending === undefined) {
      if (this.#pending.size >= MAX_TRACKED_WRITES) {
        if (!warmup) this.#untracked++
        return
      }
      this.#pending.set(id, { ackedAt: now, delivered: 0, early: 0, warmup })
      return
    }
    pending.ackedAt = now
    pending.warmup = warmup
    if (!warmup) {
      for (let i = 0; i < pending.early; i++) recordLatencyMs(this.#histogram, 0)
      this.#beforeAck += pending.early
      this.#events += pending.early
    }
    this.#settleIfDone(id, pending)
  }

  delivered(id: string): void {
    const now = performance.now()
    let pending = this.#pending.get(id)
    if (pending === undefined) {
      if (this.#pending.size >= MAX_TRACKED_WRITES) return
      pending = { ackedAt: undefined, delivered: 0, early: 0, warmup: false }
      this.#pending.set(id, pending)
    }
    pending.delivered++
    if (pending.ackedAt === undefined) {
      pending.early++
    } else if (!pending.warmup) {
      recordLatencyMs(this.#histogram, now - pending.ackedAt)
      this.#events++
    }
    this.#settleIfDone(id, pending)
  }

  /** Deliveries of measured acknowledged writes that have not arrived yet. */
  owed(): number {
    let owed = 0
    for (const pending of this.#pending.values()) {
      if (pending.ackedAt !== undefined && !pending.warmup) owed += this.#watchers - pending.delivered
    }
    return owed
  }

  /** `elapsedMs`: the measured time of the load. */
  stats(elapsedMs: number): FanoutStats {
    return {
      watchers: this.#watchers,
      events: this.#events,
      eventsPerSecond: elapsedMs > 0 ? this.#events * 1000 / elapsedMs : 0,
      latencyMs: summarizeLatency(this.#histogram),
      missed: this.owed(),
      beforeAck: this.#beforeAck,
      untracked: this.#untracked,
    }
  }

  #settleIfDone(id: string, pending: Pending): void {
    if (pending.ackedAt !== undefined && pending.delivered >= this.#watchers) this.#pending.delete(id)
  }
}

/** Polls until nothing is owed, `failed()` says so, or `timeoutMs` passes. */
export async function drain(latency: FanoutLatency, timeoutMs: number, failed: () => boolean = () => false): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (latency.owed() > 0 && performance.now() < deadline && !failed()) await new Promise(resolve => setTimeout(resolve, DRAIN_POLL_MS))
}

const DRAIN_POLL_MS = 50
