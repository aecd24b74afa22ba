import type { Histogram } from 'hdr-histogram-js'
import type { KindStats, LoadResult, OperationKind, OpOutcome } from './closed-loop.js'
import { createLatencyHistogram, recordLatencyMs, summarizeLatency } from './latency.js'

/** Error label of an operation that rejected instead of resolving with an outcome. */
export const EXCEPTION_ERROR = 'exception'

/** Counts and latencies of one kind of operation (or of all of them). */
class KindRecorder {
  readonly histogram: Histogram = createLatencyHistogram()
  count = 0
  failed = 0
  readonly errors = new Map<string, number>()

  success(latencyMs: number): void {
    this.count++
    recordLatencyMs(this.histogram, latencyMs)
  }

  failure(label: string): void {
    this.count++
    this.failed++
    this.errors.set(label, (this.errors.get(label) ?? 0) + 1)
  }

  stats(elapsedMs: number): KindStats {
    const successes = this.count - this.failed
    return {
      count: this.count,
      errors: Object.fromEntries([...this.errors].sort(([a], [b]) => a.localeCompare(b))),
      opsPerSecond: elapsedMs > 0 ? successes * 1000 / elapsedMs : 0,
      latencyMs: summarizeLatency(this.histogram),
    }
  }
}

/**
 * Accumulates recorded operations into one histogram per kind plus a total, and turns them into
 * the LoadResult. Latency is kept for successes only: a fast refusal is not a fast write.
 */
export class LoadRecorder {
  readonly #total = new KindRecorder()
  readonly #byKind = new Map<OperationKind, KindRecorder>()

  /** EXCEPTION_ERROR is an operation that rejected: counted in the total only, kind unknown. */
  record(outcome: OpOutcome | typeof EXCEPTION_ERROR, latencyMs: number): void {
    if (outcome === EXCEPTION_ERROR) {
      this.#total.failure(EXCEPTION_ERROR)
      return
    }
    let kind = this.#byKind.get(outcome.kind)
    if (kind === undefined) {
      kind = new KindRecorder()
      this.#byKind.set(outcome.kind, kind)
    }
    if (outcome.ok) {
      kind.success(latencyMs)
      this.#total.success(latencyMs)
    } else {
      kind.failure(outcome.error)
      this.#total.failure(outcome.error)
    }
  }

  get completed(): number {
    return this.#total.count
  }

  get errors(): number {
    return this.#total.failed
  }

  result(elapsedMs: number): LoadResult {
    const byKind: Partial<Record<OperationKind, KindStats>> = {}
    for (const kind of [...this.#byKind.keys()].sort()) byKind[kind] = (this.#byKind.get(kind) as KindRecorder).stats(elapsedMs)
    return { elapsedMs, total: this.#total.stats(elapsedMs), byKind }
  }
}
