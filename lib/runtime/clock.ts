/**
 * Time as protocol shells see it: a reading in milliseconds and one-shot timers. The daemon uses
 * systemClock; tests and simulations use FakeClock, which only moves when told to, so a run is
 * a function of its inputs and seed.
 */
export interface TimerHandle {
  readonly __timer: true
}

export interface Clock {
  /** Wall-clock reading in ms: what versions and TTLs are made of; it may jump. */
  nowMs(): number
  /**
   * A reading that never jumps (ms from an arbitrary origin), to tell how far the wall clock
   * moved on its own: a wall clock stepped by an operator or a bad NTP source shows as a change
   * of nowMs() − monotonicMs() (lib/clock/offset-monitor.ts).
   */
  monotonicMs(): number
  setTimeout(callback: () => void, delayMs: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout: (callback, delayMs) => {
    const timer = setTimeout(callback, delayMs)
    // A pending request or reconnect timer alone must not keep the process alive.
    timer.unref()
    return timer as unknown as TimerHandle
  },
  clearTimeout: handle => clearTimeout(handle as unknown as NodeJS.Timeout),
}

interface FakeTimer extends TimerHandle {
  readonly dueAtMs: number
  /** Insertion order: timers due at the same time run in the order they were set. */
  readonly sequence: number
  readonly callback: () => void
  cancelled: boolean
}

/** Bounds one advance() so a timer that keeps re-arming itself at delay 0 fails loudly. */
const MAX_TIMERS_PER_ADVANCE = 1_000_000

function runsBefore(a: FakeTimer, b: FakeTimer): boolean {
  return a.dueAtMs < b.dueAtMs || (a.dueAtMs === b.dueAtMs && a.sequence < b.sequence)
}

export class FakeClock implements Clock {
  #nowMs: number
  #sequence = 0
  /** Binary min-heap by (dueAtMs, sequence); cancelled timers stay until they reach the top. */
  readonly #heap: FakeTimer[] = []
  #pending = 0

  constructor(startMs = 0) {
    this.#nowMs = startMs
  }

  nowMs(): number {
    return this.#nowMs
  }

  monotonicMs(): number {
    return this.#nowMs
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer: FakeTimer = { __timer: true, dueAtMs: this.#nowMs + Math.max(0, delayMs), sequence: this.#sequence++, callback, cancelled: false }
    this.#push(timer)
    this.#pending++
    return timer
  }

  clearTimeout(handle: TimerHandle): void {
    const timer = handle as FakeTimer
    if (timer.cancelled) return
    timer.cancelled = true
    this.#pending--
  }

  /** Timers set and neither run nor cleared. */
  get pendingTimers(): number {
    return this.#pending
  }

  /**
   * Moves time forward by `ms`, running due timers in (due time, insertion) order with the
   * clock set to each one's due time. After each timer, pending promise callbacks settle before
   * the next runs, so an async handler answers at the simulated time it was called.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance needs a non-negative duration, got ${ms}`)
    const targetMs = this.#nowMs + ms
    for (let ran = 0; ; ran++) {
      if (ran >= MAX_TIMERS_PER_ADVANCE) throw new Error(`more than ${MAX_TIMERS_PER_ADVANCE} timers in one advance: a timer loop?`)
      const next = this.#popDue(targetMs)
      if (next === undefined) break
      this.#nowMs = next.dueAtMs
      next.callback()
      await settle()
    }
    this.#nowMs = targetMs
  }

  /** Removes and returns the next live timer due at or before `untilMs`. */
  #popDue(untilMs: number): FakeTimer | undefined {
    for (;;) {
      const top = this.#heap[0]
      if (top === undefined || (!top.cancelled && top.dueAtMs > untilMs)) return undefined
      this.#popTop()
      if (top.cancelled) continue
      top.cancelled = true
      this.#pending--
      return top
    }
  }

  #push(timer: FakeTimer): void {
    const heap = this.#heap
    heap.push(timer)
    let index = heap.length - 1
    while (index > 0) {
      const parent = (index - 1) >> 1
      const above = heap[parent] as FakeTimer
      if (!runsBefore(timer, above)) break
      heap[index] = above
      index = parent
    }
    heap[index] = timer
  }

  #popTop(): void {
    const heap = this.#heap
    const last = heap.pop() as FakeTimer
    if (heap.length === 0) return
    let index = 0
    for (;;) {
      const left = 2 * index + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && runsBefore(heap[right] as FakeTimer, heap[left] as FakeTimer) ? right : left
      const below = heap[child] as FakeTimer
      if (!runsBefore(below, last)) break
      heap[index] = below
      index = child
    }
    heap[index] = last
  }
}

/** Resolves after every promise callback queued so far (and those they queue) has run. */
function settle(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve))
}

/** A repeating timer built from one-shot ones; stop() cancels the next run. */
export interface Repeating {
  stop(): void
}

/** Runs `callback` every `intervalMs` on `clock` until stopped (the first run one interval from now). */
export function repeatEvery(clock: Clock, intervalMs: number, callback: () => void): Repeating {
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be positive, got ${intervalMs}`)
  let stopped = false
  let handle: TimerHandle | undefined
  const arm = (): void => {
    handle = clock.setTimeout(() => {
      if (stopped) return
      arm()
      callback()
    }, intervalMs)
  }
  arm()
  return {
    stop: () => {
      stopped = true
      if (handle !== undefined) clock.clearTimeout(handle)
    },
  }
}

/** Resolves after `delayMs` on `clock`; rejects with the signal's reason when it aborts first. */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason)
    const onAbort = (): void => {
      clock.clearTimeout(handle)
      reject(signal?.reason)
    }
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, delayMs)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** `clock` read `offsetMs` ahead (negative: behind); its timers run on the same time base. */
export function offsetClock(clock: Clock, offsetMs: number): Clock {
  if (offsetMs === 0) return clock
  return {
    nowMs: () => clock.nowMs() + offsetMs,
    monotonicMs: () => clock.monotonicMs(),
    setTimeout: (callback, delayMs) => clock.setTimeout(callback, delayMs),
    clearTimeout: handle => clock.clearTimeout(handle),
  }
}
