import assert from 'node:assert/strict'
import { HLC_TICKS_PER_MS, hlcWallMs } from './version.js'
import { ClockAheadError, ClockExhaustedError, ClockSkewError } from './errors.js'
import { sleep, type Clock, type TimerHandle } from '../runtime/clock.js'

/**
 * How far ahead of the wall clock the persisted ceiling is reserved, at most. A bigger window
 * means fewer saves (one per half window); a smaller one means a restarted node starts less far
 * in the future. The effective window is also capped by maxSkewMs / 2, see HybridLogicalClock.
 */
export const HIGH_WATER_RESERVE_MS = 10_000
/**
 * Floor of the reserve window, so a tiny maxSkewMs does not turn into a save every few ms; below
 * 2 × this the restart lead can exceed maxSkewMs / 2 (see HybridLogicalClock).
 */
export const MIN_RESERVE_MS = 50
/**
 * Between ticks the background refill lets the headroom fall to this fraction of the window
 * before it saves: the least the quarter-window polling it replaces could leave, so a save
 * between ticks goes every three quarters of a window (a tick still saves at half, as before).
 */
const REFILL_TIMER_HEADROOM_FRACTION = 1 / 4
/** Saves next() waits through before it reports exhaustion (503). */
const MAX_EXHAUSTED_WAITS = 20
/** next()'s pause when no save is in flight to wait for (one is being retried after a failure). */
const EXHAUSTED_RETRY_MS = 50
/** After a failed save, wait this long (wall clock) before trying again, so a broken disk is not hammered from the hot path. */
const SAVE_RETRY_DELAY_MS = 1_000
/**
 * The background refill keeps the ceiling ahead of the wall clock only this long after the last
 * tick now() issued: an idle node then stops committing (and fsyncing) a ceiling every quarter
 * window, and the first tick after a longer pause waits for one save instead.
 */
export const REFILL_AFTER_LAST_TICK_MS = 10_000

/** Durable storage for the clock's reserved ceiling (lib/store/high-water.ts keeps it in LMDB). */
export interface HighWaterMark {
  /** The last saved ceiling in hlc ticks, 0 when none was ever saved. */
  load(): number
  /** Resolves once `ceilingHlc` is durable on disk. */
  save(ceilingHlc: number): Promise<void>
}

export interface HybridLogicalClockOptions {
  /** Wall clock in ms (Date.now in the daemon, a fake in tests and simulations). */
  readonly nowMs: () => number
  /** Largest accepted lead of a remote reading over our wall clock, in ms. */
  readonly maxSkewMs: number
  readonly highWater: HighWaterMark
  /** Told about a failed background save (for logs and metrics); the clock retries by itself. */
  readonly onSaveError?: (error: unknown) => void
  /** Runs the background refill and the retry wait; systemClock in the daemon. */
  readonly clock: Clock
}

/**
 * Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014) in integer ticks:
 * wallMs × HLC_TICKS_PER_MS + logical counter, strictly increasing.
 *
 * Restart safety: the clock persists a ceiling ahead of the wall clock and only hands out ticks
 * at or below a ceiling that is already durable. A restarted clock starts above the loaded
 * ceiling, so it never repeats a tick even if the wall clock went back.
 *
 * Invariant (asserted in now()): every tick now() returns is greater than every tick returned
 * before and ≤ the durable ceiling.
 *
 * Bounded lead: now() refuses (ClockAheadError) rather than issue a tick more than maxSkewMs
 * ahead of the wall clock, the lead replicas refuse in update(). Ticks that far ahead appear only
 * after the wall clock went back: a clock stepped back by NTP, or a node restarted with its clock
 * corrected onto a ceiling persisted while it ran ahead. Writes then wait out the difference.
 *
 * now() stays synchronous: start() awaits the first reservation, and the next one is saved in the
 * background once half of the window is used (checked on every call), or between ticks once the
 * headroom falls to REFILL_TIMER_HEADROOM_FRACTION of it (a timer set for that moment, so it fires
 * once per save and the ceiling keeps ahead of the wall clock). If the wall clock overtakes the
 * durable ceiling anyway (save still in flight, event loop stalled), now() keeps issuing within the
 * durable window at logical speed (last + 1, but not below the wall time the window was reserved
 * at); only when even that is used up does it throw ClockExhaustedError (503) until the save
 * lands.
 *
 * Idle: the timer refills only within REFILL_AFTER_LAST_TICK_MS of the last tick now() issued
 * (update() issues none of ours), so an idle node writes nothing and sets no timer at all (the
 * next now() sets it again). After a longer pause the ceiling lags the wall clock, and creeping
 * would stamp the first write with the time of the last save — older than writes other nodes
 * made meanwhile, so it would lose to them under last-writer-wins. now() then throws
 * ClockExhaustedError and starts a save; next() (every write path) waits for it, so the first
 * write after a pause pays one ceiling commit.
 *
 * The window is capped at maxSkewMs / 2 (floored at MIN_RESERVE_MS): a node restarted moments
 * after a save starts at most one window ahead of its wall clock, and peers (checking our
 * readings against the same maxSkewMs) must still accept its timestamps.
 *
 * update() may have to go past the durable ceiling (a peer ahead by more than our headroom but
 * within maxSkewMs). It does, and starts a reservation at once; now() refuses until that is
 * durable, so the invariant above holds for every tick we issue. A crash inside that window
 * (one save) forgets only the remote reading, never a tick of our own.
 */
export class HybridLogicalClock {
  private readonly nowMs: () => number
  private readonly maxSkewMs: number
  private readonly highWater: HighWaterMark
  private readonly onSaveError: ((error: unknown) => void) | undefined
  /** Reserve window in ticks. */
  private readonly reserveTicks: number

  /** Greatest tick issued or adopted so far. */
  private lastTick = 0
  /** Greatest ceiling known to be on disk; now() never returns more. */
  private durableCeiling = 0
  /** The save in flight, if any; at most one at a time. */
  private pendingSave: Promise<void> | undefined
  /** Wall ms before which no new save is attempted after a failure. */
  private retryNotBeforeMs = 0
  /** The background refill (see armRefill); none while idle or while a save is in flight. */
  private refillTimer: TimerHandle | undefined
  /** Wall ms of the last tick now() issued (or of start()); the refill timer idles after it. */
  private lastIssueWallMs = 0
  private readonly clock: Clock
  private state: 'new' | 'running' | 'stopped' = 'new'

  constructor(options: HybridLogicalClockOptions) {
    if (!Number.isSafeInteger(options.maxSkewMs) || options.maxSkewMs < 1) {
      throw new RangeError(`maxSkewMs must be a positive integer, got ${options.maxSkewMs}`)
    }
    this.nowMs = options.nowMs
    this.maxSkewMs = options.maxSkewMs
    this.highWater = options.highWater
    this.onSaveError = options.onSaveError
    this.clock = options.clock
    const reserveMs = Math.max(MIN_RESERVE_MS, Math.min(HIGH_WATER_RESERVE_MS, Math.floor(options.maxSkewMs / 2)))
    this.reserveTicks = reserveMs * HLC_TICKS_PER_MS
  }

  /** Loads the persisted ceiling and durably reserves the first window; call once before now(). */
  async start(): Promise<void> {
    assert.equal(this.state, 'new', 'the clock can be started only once')
    const loaded = this.highWater.load()
    if (!Number.isSafeInteger(loaded) || loaded < 0) throw new RangeError(`stored hlc high-water mark is not a tick count: ${loaded}`)
    // Ticks up to the loaded ceiling may have been issued before the restart.
    this.lastTick = loaded
    this.durableCeiling = loaded
    const ceiling = Math.max(this.wallTicks(), loaded) + this.reserveTicks
    await this.highWater.save(ceiling)
    this.durableCeiling = ceiling
    this.state = 'running'
    this.lastIssueWallMs = this.readWallMs()
    this.armRefill()
  }

  /** Stops the background refill and waits for a save in flight. */
  async stop(): Promise<void> {
    this.state = 'stopped'
    if (this.refillTimer !== undefined) this.clock.clearTimeout(this.refillTimer)
    this.refillTimer = undefined
    await this.pendingSave
  }

  /** The next tick: max(last + 1, wall clock), kept within the durable ceiling. */
  now(): number {
    assert.equal(this.state, 'running', 'the clock is not running (start() it first)')
    const previous = this.lastTick
    const wallMs = this.readWallMs()
    // Never a tick further ahead of the wall clock than replicas accept (update() refuses the
    // same lead): after the wall clock was set back, or a restart onto a ceiling persisted by a
    // run whose clock was ahead, wait for the wall clock instead of issuing versions from the
    // future. +1: update() may adopt a reading maxSkewMs ahead and step one tick into the next ms.
    const leadMs = hlcWallMs(previous + 1) - wallMs
    if (leadMs > this.maxSkewMs + 1) throw new ClockAheadError(leadMs, this.maxSkewMs)
    let tick = Math.max(previous + 1, wallMs * HLC_TICKS_PER_MS)
    if (tick > this.durableCeiling) {
      // Creep: no later than the wall clock was when the durable window was reserved — unless
      // the refill idled, when that time is from before the pause (see the class comment).
      tick = this.idle(wallMs) ? this.durableCeiling + 1 : Math.max(previous + 1, this.durableCeiling - this.reserveTicks)
      if (tick > this.durableCeiling) {
        this.refillIfLow()
        throw new ClockExhaustedError(this.durableCeiling)
      }
    }
    assert.ok(tick > previous && tick <= this.durableCeiling, 'hlc invariant: increasing and within the durable ceiling')
    this.lastTick = tick
    this.lastIssueWallMs = wallMs
    this.refillIfLow()
    // The first tick after an idle spell sets the refill timer again.
    if (this.refillTimer === undefined) this.armRefill()
    return tick
  }

  /**
   * now(), but when the durable window is used up (a ceiling save slower than the wall clock, an
   * event loop stalled under load) it waits for the save in flight instead of failing: a write
   * then takes a few ms longer rather than answering 503. Gives up with ClockExhaustedError only
   * after MAX_EXHAUSTED_WAITS saves did not make room (a failing disk).
   */
  async next(): Promise<number> {
    for (let wait = 0; ; wait++) {
      try {
        return this.now()
      } catch (error) {
        if (!(error instanceof ClockExhaustedError) || wait === MAX_EXHAUSTED_WAITS) throw error
        this.refillIfLow()
        await (this.pendingSave ?? sleep(this.clock, EXHAUSTED_RETRY_MS))
      }
    }
  }

  /**
   * Merges a remote reading: afterwards every tick is greater than `remoteHlc`. Returns the new
   * reading. Throws ClockSkewError, without moving the clock, when the remote reading is more
   * than maxSkewMs ahead of our wall clock.
   */
  update(remoteHlc: number): number {
    assert.equal(this.state, 'running', 'the clock is not running (start() it first)')
    if (!Number.isSafeInteger(remoteHlc) || remoteHlc < 0) throw new TypeError(`remote hlc must be a non-negative safe integer, got ${remoteHlc}`)
    const wallMs = this.readWallMs()
    const aheadMs = hlcWallMs(remoteHlc) - wallMs
    if (aheadMs > this.maxSkewMs) throw new ClockSkewError(remoteHlc, aheadMs, this.maxSkewMs)
    const previous = this.lastTick
    const logicalNext = Math.max(previous + 1, remoteHlc + 1)
    let tick = Math.max(logicalNext, wallMs * HLC_TICKS_PER_MS)
    // Past the durable ceiling only when the remote reading itself forces it (see class comment).
    if (tick > this.durableCeiling) tick = logicalNext
    this.lastTick = tick
    // An idle node reserves only what a remote reading forces on it.
    if (tick > this.durableCeiling || !this.idle(wallMs)) this.refillIfLow()
    return tick
  }

  /** The greatest tick issued or adopted so far. */
  last(): number {
    return this.lastTick
  }

  /** True when now() issued no tick for REFILL_AFTER_LAST_TICK_MS: the refill rests. */
  private idle(wallMs: number): boolean {
    return wallMs - this.lastIssueWallMs > REFILL_AFTER_LAST_TICK_MS
  }

  private refillIfLow(): void {
    if (this.state !== 'running' || this.pendingSave !== undefined) return
    const wallMs = this.readWallMs()
    const base = Math.max(wallMs * HLC_TICKS_PER_MS, this.lastTick)
    if (this.durableCeiling - base >= this.reserveTicks / 2) return
    if (wallMs < this.retryNotBeforeMs) return
    const ceiling = base + this.reserveTicks
    this.pendingSave = Promise.resolve()
      .then(() => this.highWater.save(ceiling))
      .then(
        () => { this.durableCeiling = Math.max(this.durableCeiling, ceiling) },
        (error: unknown) => {
          this.retryNotBeforeMs = this.readWallMs() + SAVE_RETRY_DELAY_MS
          this.onSaveError?.(error)
        },
      )
      .finally(() => {
        this.pendingSave = undefined
        // update() may have moved past this reservation while it was in flight.
        this.refillIfLow()
        this.armRefill()
      })
  }

  /**
   * Sets the background refill for the wall clock taking the headroom below
   * REFILL_TIMER_HEADROOM_FRACTION of the window (or a failed save's retry time). Nothing is set
   * while a save is in flight (its end sets the timer) or when that moment falls after the
   * refill goes idle: until the next tick, nothing is due.
   */
  private armRefill(): void {
    if (this.state !== 'running' || this.pendingSave !== undefined || this.refillTimer !== undefined) return
    const lowAtWallMs = Math.floor((this.durableCeiling - this.reserveTicks * REFILL_TIMER_HEADROOM_FRACTION) / HLC_TICKS_PER_MS)
    const wallMs = this.readWallMs()
    const dueWallMs = Math.max(lowAtWallMs, this.retryNotBeforeMs, wallMs)
    if (this.idle(dueWallMs)) return
    // At most one idle period ahead: a wall clock set back meanwhile only makes it fire early,
    // when it looks again.
    const delayMs = Math.min(REFILL_AFTER_LAST_TICK_MS, dueWallMs - wallMs)
    this.refillTimer = this.clock.setTimeout(() => {
      this.refillTimer = undefined
      if (!this.idle(this.readWallMs())) this.refillIfLow()
      this.armRefill()
    }, delayMs)
  }

  private wallTicks(): number {
    return this.readWallMs() * HLC_TICKS_PER_MS
  }

  private readWallMs(): number {
    const ms = Math.floor(this.nowMs())
    assert.ok(Number.isSafeInteger(ms) && ms >= 0, `wall clock reading is not a non-negative ms count: ${ms}`)
    return ms
  }
}
