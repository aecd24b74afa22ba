import type { Clock, TimerHandle } from '../runtime/clock.js'
import { EXCEPTION_ERROR, LoadRecorder } from './load-recorder.js'
import { startProgress, type LoadProgress, type LoadResult, type Operation, type OpOutcome } from './closed-loop.js'

export const MAX_IN_FLIGHT = 10_000

export interface OpenLoopOptions {
  /** Operations started per second; operation i is scheduled at start + i × 1000 / rate ms. */
  readonly ratePerSecond: number
  /** At most this many operations run at once; a due operation past the bound waits for a slot (and is counted). */
  readonly maxInFlight: number
  /** Schedule operations for this long after the warm-up … */
  readonly durationMs?: number
  /** … or this many recorded operations (at least one of the two; both: whichever ends the schedule first). */
  readonly ops?: number
  /** Operations scheduled in the first warmupMs run but are not recorded. */
  readonly warmupMs?: number
  /** `slot` is 0 … maxInFlight-1, free for this operation alone while it runs (e.g. to pick a connection). */
  readonly operation: Operation
  readonly onProgress?: (progress: LoadProgress) => void
  /** Every recorded operation as it completes: for tests and per-operation traces. */
  readonly onRecorded?: (sample: OpenLoopSample) => void
  /** The schedule's time and timers; default performance.now() and Node's timers (tests pass a FakeClock). */
  readonly clock?: ScheduleClock
}

export type ScheduleClock = Pick<Clock, 'monotonicMs' | 'setTimeout' | 'clearTimeout'>

/**
 * Not lib/runtime's systemClock: its timers are unref'd, and between two operations of a slow
 * schedule the pump's timer is all that keeps the load generator's process alive.
 */
const RUNNING_CLOCK: ScheduleClock = {
  monotonicMs: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs) as unknown as TimerHandle,
  clearTimeout: (handle) => { clearTimeout(handle as unknown as NodeJS.Timeout) },
}

/** One recorded operation, times in ms on the schedule's clock (performance.now() by default). */
export interface OpenLoopSample {
  /** Position in the schedule, warm-up included. */
  readonly index: number
  readonly scheduledAt: number
  readonly startedAt: number
  /** From the scheduled start to completion: what a caller arriving on schedule would have waited. */
  readonly latencyMs: number
  readonly outcome: OpOutcome | typeof EXCEPTION_ERROR
}

export interface OpenLoopSchedule {
  readonly ratePerSecond: number
  readonly maxInFlight: number
  /** Recorded operations the schedule held (started or not). */
  readonly scheduled: number
  /** Recorded operations that were due while maxInFlight were running, so started late; their latency includes the wait. */
  readonly heldBack: number
  /** Recorded operations still waiting for a slot when the schedule's time ran out: never started, not in the latencies. */
  readonly notStarted: number
}

export interface OpenLoopResult extends LoadResult {
  readonly schedule: OpenLoopSchedule
}

/**
 * Open-loop load as wrk2 makes it: operations start on a fixed schedule whatever the system's
 * speed, and each latency is measured from the operation's scheduled start, not from when it
 * could actually start. A closed loop stops sending while the system stalls, so the callers
 * who would have arrived during a stall never appear in its percentiles (coordinated omission);
 * here they appear with the time they would have waited.
 */
export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  checkOptions(options)
  const { maxInFlight, operation, onRecorded } = options
  const intervalMs = 1000 / options.ratePerSecond
  const warmupMs = options.warmupMs ?? 0
  const clock = options.clock ?? RUNNING_CLOCK
  const recorder = new LoadRecorder()
  const startedAt = clock.monotonicMs()
  const measureFrom = startedAt + warmupMs
  // Operations scheduled before measureFrom are warm-up; the schedule ends at the duration or the op count.
  const warmupOps = Math.ceil(warmupMs / intervalMs)
  const byDuration = options.durationMs === undefined ? Infinity : Math.ceil((warmupMs + options.durationMs) / intervalMs)
  const byCount = options.ops === undefined ? Infinity : warmupOps + options.ops
  const totalOps = Math.min(byDuration, byCount)
  const scheduledAt = (index: number): number => startedAt + index * intervalMs
  const endAt = scheduledAt(totalOps)

  let nextIndex = 0
  let inFlight = 0
  /** Operations below this index were found due while every slot was taken. */
  let blockedBelow = 0
  let heldBack = 0
  let notStarted = 0
  const freeSlots = Array.from({ length: maxInFlight }, (_, slot) => maxInFlight - 1 - slot)
  let timer: TimerHandle | undefined
  let finish: () => void = () => {}
  const done = new Promise<void>(resolve => { finish = resolve })

  const launch = (index: number, slot: number): void => {
    const launchedAt = clock.monotonicMs()
    if (index < blockedBelow && index >= warmupOps) heldBack++
    inFlight++
    void settle(operation, slot).then(outcome => {
      const completedAt = clock.monotonicMs()
      inFlight--
      freeSlots.push(slot)
      if (index >= warmupOps) {
        const sample = { index, scheduledAt: scheduledAt(index), startedAt: launchedAt, latencyMs: completedAt - scheduledAt(index), outcome }
        recorder.record(outcome, sample.latencyMs)
        onRecorded?.(sample)
      }
      pump()
    })
  }

  function pump(): void {
    if (timer !== undefined) {
      clock.clearTimeout(timer)
      timer = undefined
    }
    const now = clock.monotonicMs()
    const due = Math.min(totalOps, Math.floor((now - startedAt) / intervalMs) + 1)
    while (nextIndex < due && inFlight < maxInFlight) launch(nextIndex++, freeSlots.pop() as number)
    if (now >= endAt && nextIndex < totalOps) {
      // The schedule is over: what still waits for a slot is dropped and counted, not run late
      // (against a stalled system that backlog could take hours to drain at the client's timeout).
      notStarted += totalOps - Math.max(nextIndex, warmupOps)
      nextIndex = totalOps
    }
    if (nextIndex < due) blockedBelow = Math.max(blockedBelow, due)
    if (nextIndex >= totalOps) {
      if (inFlight === 0) finish()
      return
    }
    // Held-back operations wait for a completion (which pumps again) or the end of the schedule.
    const wakeAt = nextIndex < due ? endAt : scheduledAt(nextIndex)
    timer = clock.setTimeout(pump, Math.max(0, wakeAt - clock.monotonicMs()))
  }

  const progress = startProgress(options.onProgress, startedAt, recorder)
  try {
    pump()
    await done
  } finally {
    progress.stop()
    if (timer !== undefined) clock.clearTimeout(timer)
  }
  const scheduled = Math.max(0, totalOps - warmupOps)
  return {
    ...recorder.result(Math.max(0, clock.monotonicMs() - measureFrom)),
    schedule: { ratePerSecond: options.ratePerSecond, maxInFlight, scheduled, heldBack, notStarted },
  }
}

async function settle(operation: Operation, slot: number): Promise<OpOutcome | typeof EXCEPTION_ERROR> {
  try {
    return await operation(slot)
  } catch {
    return EXCEPTION_ERROR
  }
}

function checkOptions(options: OpenLoopOptions): void {
  const { ratePerSecond, maxInFlight, durationMs, ops, warmupMs } = options
  if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be above 0, got ${ratePerSecond}`)
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > MAX_IN_FLIGHT) {
    throw new RangeError(`maxInFlight must be a whole number from 1 to ${MAX_IN_FLIGHT}, got ${maxInFlight}`)
  }
  if (durationMs === undefined && ops === undefined) throw new RangeError('give durationMs or ops (or both) so the schedule ends')
  if (durationMs !== undefined && !(Number.isFinite(durationMs) && durationMs > 0)) throw new RangeError(`durationMs must be above 0, got ${durationMs}`)
  if (ops !== undefined && (!Number.isSafeInteger(ops) || ops < 1)) throw new RangeError(`ops must be a positive whole number, got ${ops}`)
  if (warmupMs !== undefined && !(Number.isFinite(warmupMs) && warmupMs >= 0)) throw new RangeError(`warmupMs must be 0 or more, got ${warmupMs}`)
}
