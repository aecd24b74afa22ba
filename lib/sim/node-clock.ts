import type { Clock, FakeClock, TimerHandle } from '../runtime/clock.js'

/**
 * One simulated node's view of the shared fake time base: its readings are shifted by the node's
 * skew (settable, so a fault can step a clock), its timers run on the shared base. halt() is a
 * crash: every pending timer of the node is cancelled and later ones are never run, so nothing of
 * a dead node's modules wakes up again; a restarted node gets a new NodeClock.
 */
export class NodeClock implements Clock {
  readonly #base: FakeClock
  readonly #pending = new Set<TimerHandle>()
  #halted = false
  /** How far this node's wall clock reads ahead of the shared base (negative: behind), in ms. */
  skewMs: number

  constructor(base: FakeClock, skewMs = 0) {
    this.#base = base
    this.skewMs = skewMs
  }

  nowMs(): number {
    return this.#base.nowMs() + this.skewMs
  }

  /** The shared time base: a skew step moves nowMs(), not this. */
  monotonicMs(): number {
    return this.#base.nowMs()
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    if (this.#halted) return HALTED_TIMER
    const handle = this.#base.setTimeout(() => {
      this.#pending.delete(handle)
      callback()
    }, delayMs)
    this.#pending.add(handle)
    return handle
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle === HALTED_TIMER) return
    this.#pending.delete(handle)
    this.#base.clearTimeout(handle)
  }

  /** Timers set and neither run nor cleared. */
  get pendingTimers(): number {
    return this.#pending.size
  }

  halt(): void {
    this.#halted = true
    for (const handle of this.#pending) this.#base.clearTimeout(handle)
    this.#pending.clear()
  }
}

/** What setTimeout returns on a halted clock: a timer that never runs. */
const HALTED_TIMER: TimerHandle = { __timer: true }
