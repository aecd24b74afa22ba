import { setImmediate as nextMacrotask } from 'node:timers/promises'
import type { LatencySummaryMs } from './latency.js'
import { EXCEPTION_ERROR, LoadRecorder } from './load-recorder.js'

export { EXCEPTION_ERROR }

export type OperationKind = 'put' | 'get' | 'cas' | 'incr'

/** One operation; resolve with the outcome, never reject (a thrown error is counted as error kind 'exception'). */
export type Operation = (worker: number) => Promise<OpOutcome>

/** `error` is a short fixed label such as 'timeout', 'unavailable_503', 'http_500', 'connection'. */
export type OpOutcome =
  | { readonly kind: OperationKind; readonly ok: true }
  | { readonly kind: OperationKind; readonly ok: false; readonly error: string }

export interface ClosedLoopOptions {
  /** Workers; each runs one operation at a time. */
  readonly concurrency: number
  /** Stop issuing this long after the warm-up … */
  readonly durationMs?: number
  /** … or after this many recorded operations in total (at least one of the two is required; both: whichever comes first). */
  readonly ops?: number
  /** Operations started in the first warmupMs are run but not recorded, and not counted in `ops`. */
  readonly warmupMs?: number
  readonly operation: Operation
  /** Called about once a second while the load runs. */
  readonly onProgress?: (progress: LoadProgress) => void
}

export interface LoadProgress {
  /** Since the start, warm-up included. */
  readonly elapsedMs: number
  /** Recorded operations completed so far (successes and errors). */
  readonly completed: number
  readonly errors: number
  /** Completed operations per second over the last progress interval. */
  readonly opsPerSecond: number
}

export interface KindStats {
  /** Recorded operations, successes and errors. */
  readonly count: number
  /** Failed operations by error label; count minus their sum is the successes. */
  readonly errors: Readonly<Record<string, number>>
  /** Successful operations per second of the measured time. */
  readonly opsPerSecond: number
  /** Of successful operations only. */
  readonly latencyMs: LatencySummaryMs
}

export interface LoadResult {
  /** Measured time: from the end of the warm-up until the last recorded operation completed. */
  readonly elapsedMs: number
  /** Every recorded operation, including ones whose operation threw (error 'exception', no kind). */
  readonly total: KindStats
  readonly byKind: Readonly<Partial<Record<OperationKind, KindStats>>>
}

export const MAX_CONCURRENCY = 10_000
export const PROGRESS_INTERVAL_MS = 1000
/**
 * A worker yields to the event loop after this many operations in a row, so an operation that
 * completes without I/O (a cache hit, a fake) cannot starve the progress timer and the deadline.
 */
const OPS_BETWEEN_YIELDS = 64

/**
 * Closed-loop load: `concurrency` workers each issue the next operation as soon as the previous
 * one completes, so offered load follows the system's speed (latency is measured, not queued).
 */
export async function runClosedLoop(options: ClosedLoopOptions): Promise<LoadResult> {
  checkOptions(options)
  const recorder = new LoadRecorder()
  const startedAt = performance.now()
  const measureFrom = startedAt + (options.warmupMs ?? 0)
  const stopAt = options.durationMs === undefined ? Infinity : measureFrom + options.durationMs
  const maxOps = options.ops ?? Infinity
  let measuredIssued = 0

  const claim = (now: number): 'warmup' | 'measured' | 'stop' => {
    if (now >= stopAt) return 'stop'
    if (now < measureFrom) return 'warmup'
    if (measuredIssued >= maxOps) return 'stop'
    measuredIssued++
    return 'measured'
  }

  const worker = async (index: number): Promise<void> => {
    for (let sinceYield = 1; ; sinceYield++) {
      const started = performance.now()
      const phase = claim(started)
      if (phase === 'stop') return
      const outcome = await settle(options.operation, index)
      if (phase === 'measured') recorder.record(outcome, performance.now() - started)
      if (sinceYield >= OPS_BETWEEN_YIELDS) {
        sinceYield = 0
        await nextMacrotask()
      }
    }
  }

  const progress = startProgress(options.onProgress, startedAt, recorder)
  try {
    await Promise.all(Array.from({ length: options.concurrency }, (_, index) => worker(index)))
  } finally {
    progress.stop()
  }
  return recorder.result(Math.max(0, performance.now() - measureFrom))
}

/** An operation's outcome, or the 'exception' error when it broke its promise not to reject. */
async function settle(operation: Operation, worker: number): Promise<OpOutcome | typeof EXCEPTION_ERROR> {
  try {
    return await operation(worker)
  } catch {
    return EXCEPTION_ERROR
  }
}

/** Calls onProgress about once a second with what the recorder holds; shared by both loops. */
export function startProgress(onProgress: ((progress: LoadProgress) => void) | undefined, startedAt: number, recorder: LoadRecorder): { stop(): void } {
  if (onProgress === undefined) return { stop() {} }
  let lastAt = startedAt
  let lastCompleted = 0
  const timer = setInterval(() => {
    const now = performance.now()
    const completed = recorder.completed
    const intervalMs = now - lastAt
    onProgress({
      elapsedMs: now - startedAt,
      completed,
      errors: recorder.errors,
      opsPerSecond: intervalMs > 0 ? (completed - lastCompleted) * 1000 / intervalMs : 0,
    })
    lastAt = now
    lastCompleted = completed
  }, PROGRESS_INTERVAL_MS)
  return { stop: () => clearInterval(timer) }
}

function checkOptions(options: ClosedLoopOptions): void {
  const { concurrency, durationMs, ops, warmupMs } = options
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new RangeError(`concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}, got ${concurrency}`)
  }
  if (durationMs === undefined && ops === undefined) throw new RangeError('give durationMs or ops (or both) so the load ends')
  if (durationMs !== undefined && !(Number.isFinite(durationMs) && durationMs > 0)) throw new RangeError(`durationMs must be above 0, got ${durationMs}`)
  if (ops !== undefined && (!Number.isSafeInteger(ops) || ops < 1)) throw new RangeError(`ops must be a positive whole number, got ${ops}`)
  if (warmupMs !== undefined && !(Number.isFinite(warmupMs) && warmupMs >= 0)) throw new RangeError(`warmupMs must be 0 or more, got ${warmupMs}`)
}
