import t, { type Test } from 'tap'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { HybridLogicalClock, REFILL_AFTER_LAST_TICK_MS, type HighWaterMark } from '../../lib/clock/hlc.js'
import { ClockAheadError, ClockExhaustedError, ClockSkewError } from '../../lib/clock/errors.js'
import { HLC_TICKS_PER_MS } from '../../lib/clock/version.js'
import { FakeClock, systemClock } from '../../lib/runtime/clock.js'

/** A 2024 wall-clock reading, so ticks look like real ones. */
const START_MS = 1_717_000_000_000

class FakeWallClock {
  constructor(public ms = START_MS) {}
  readonly nowMs = (): number => this.ms
}

/** In-memory high-water mark; `stored` changes only when a save completes, like a disk. */
class MemoryHighWaterMark implements HighWaterMark {
  stored = 0
  saves = 0
  /** When true, saves wait for release(). */
  holding = false
  failNext = false
  private held: (() => void)[] = []

  load(): number {
    return this.stored
  }

  async save(ceilingHlc: number): Promise<void> {
    this.saves++
    if (this.failNext) {
      this.failNext = false
      throw new Error('disk full')
    }
    if (this.holding) await new Promise<void>(resolve => this.held.push(resolve))
    this.stored = Math.max(this.stored, ceilingHlc)
  }

  /** Completes held saves and lets their promise chains settle. */
  async release(): Promise<void> {
    this.holding = false
    for (const resolve of this.held.splice(0)) resolve()
    await nextTurn()
  }
}

async function startedClock(t: Test, options: { wall?: FakeWallClock; highWater?: MemoryHighWaterMark; maxSkewMs?: number; onSaveError?: (error: unknown) => void } = {}) {
  const wall = options.wall ?? new FakeWallClock()
  const highWater = options.highWater ?? new MemoryHighWaterMark()
  const clock = new HybridLogicalClock({
    nowMs: wall.nowMs,
    maxSkewMs: options.maxSkewMs ?? 500,
    highWater,
    clock: systemClock,
    ...(options.onSaveError ? { onSaveError: options.onSaveError } : {}),
  })
  await clock.start()
  t.teardown(async () => {
    await highWater.release()
    await clock.stop()
  })
  return { clock, wall, highWater }
}

t.test('ticks strictly increase under a frozen wall clock and start at the wall clock', async t => {
  const { clock } = await startedClock(t)
  const first = clock.now()
  t.equal(first, START_MS * HLC_TICKS_PER_MS)
  let previous = first
  for (let i = 0; i < 1000; i++) {
    const tick = clock.now()
    if (tick <= previous) t.fail(`tick ${tick} after ${previous}`)
    previous = tick
  }
  t.equal(previous, first + 1000, 'a frozen wall clock advances the logical counter by one per tick')
  t.equal(clock.last(), previous)
})

t.test('ticks follow the wall clock when it moves forward', async t => {
  const { clock, wall } = await startedClock(t)
  clock.now()
  wall.ms += 25
  t.equal(clock.now(), (START_MS + 25) * HLC_TICKS_PER_MS)
})

t.test('ticks keep increasing when the wall clock goes back within maxSkewMs', async t => {
  const { clock, wall } = await startedClock(t)
  wall.ms += 100
  const before = clock.now()
  wall.ms -= 400
  const after = [clock.now(), clock.now(), clock.now()]
  t.same(after, [before + 1, before + 2, before + 3])
})

t.test('after the wall clock goes back by more than maxSkewMs, no tick is issued until it catches up', async t => {
  const { clock, wall } = await startedClock(t, { maxSkewMs: 500 })
  // The clock runs 10 s ahead for a while (reserving ceilings as it goes).
  for (let step = 0; step < 100; step++) {
    wall.ms += 100
    clock.now()
    await nextTurn()
  }
  const before = clock.now()
  t.equal(Math.floor(before / HLC_TICKS_PER_MS), wall.ms, 'ticks follow the fast wall clock')
  // NTP steps a clock that ran 10 s ahead back: ticks from its last reading would be 10 s in the
  // future for every replica, which refuse them (update()): the clock refuses them first.
  wall.ms -= 10_000
  t.throws(() => clock.now(), ClockAheadError, 'refused while the last tick leads the wall clock by 10 s')
  await t.rejects(clock.next(), ClockAheadError, 'next() does not wait it out either: the write answers 503 at once')
  t.equal(clock.last(), before, 'nothing was issued')
  wall.ms += 10_000 - 600
  t.throws(() => clock.now(), ClockAheadError, 'still refused 600 ms before the wall clock catches up')
  wall.ms += 100
  t.equal(clock.now(), before + 1, 'issues again once the lead is within maxSkewMs, still above every earlier tick')
})

t.test('100k ticks within one millisecond stay strictly increasing and within the saved ceiling', async t => {
  const { clock, highWater } = await startedClock(t, { maxSkewMs: 1000 })
  let previous = 0
  let violations = 0
  for (let i = 0; i < 100_000; i++) {
    const tick = clock.now()
    if (tick <= previous || tick > highWater.stored) violations++
    previous = tick
  }
  t.equal(violations, 0)
  t.equal(previous, START_MS * HLC_TICKS_PER_MS + 99_999)
})

t.test('a restarted clock never issues a tick at or below one issued before, even with the wall clock set back', async t => {
  const wall = new FakeWallClock()
  const highWater = new MemoryHighWaterMark()
  const { clock: before } = await startedClock(t, { wall, highWater })
  let maxIssued = 0
  let outsideCeiling = 0
  for (let ms = 0; ms < 2000; ms += 7) {
    wall.ms = START_MS + ms
    const tick = before.now()
    // The durability invariant: a crash right now must not let a restart reuse this tick.
    if (tick > highWater.stored) outsideCeiling++
    maxIssued = Math.max(maxIssued, tick)
    await nextTurn()
  }
  t.equal(outsideCeiling, 0, 'every tick was within the ceiling already saved when it was issued')
  // Simulated crash: no stop(), the new instance sees only what was saved.
  wall.ms = START_MS - 3_600_000
  const { clock: after } = await startedClock(t, { wall, highWater })
  t.throws(() => after.now(), ClockAheadError, 'no tick while the saved ceiling is an hour ahead of the wall clock')
  wall.ms = START_MS + 2000
  t.ok(after.now() > maxIssued, 'first tick after restart is above every earlier tick')
})

t.test('start begins above a persisted ceiling that is ahead of the wall clock', async t => {
  const highWater = new MemoryHighWaterMark()
  const persisted = (START_MS + 400) * HLC_TICKS_PER_MS
  highWater.stored = persisted
  const { clock } = await startedClock(t, { highWater })
  t.equal(clock.now(), persisted + 1)
})

t.test('a node restarted with its clock corrected issues nothing from the future its previous run reserved', async t => {
  // The previous run's clock was 60 s ahead: its saved ceiling is 60 s past the corrected wall clock.
  const highWater = new MemoryHighWaterMark()
  const persisted = (START_MS + 60_000) * HLC_TICKS_PER_MS
  highWater.stored = persisted
  const { clock, wall } = await startedClock(t, { highWater, maxSkewMs: 500 })
  t.throws(() => clock.now(), ClockAheadError, 'refused: those ticks would be 60 s ahead of every replica')
  wall.ms = START_MS + 60_000 - 500
  t.equal(clock.now(), persisted + 1, 'once the wall clock is within maxSkewMs, ticks resume above the ceiling')
})

t.test('update advances past a remote reading within the allowed skew', async t => {
  const { clock } = await startedClock(t, { maxSkewMs: 500 })
  clock.now()
  const remote = (START_MS + 200) * HLC_TICKS_PER_MS + 7
  const merged = clock.update(remote)
  t.ok(merged > remote)
  t.ok(clock.now() > remote, 'later local ticks come after the remote reading')
})

t.test('update refuses a remote reading too far ahead without moving the clock', async t => {
  const { clock } = await startedClock(t, { maxSkewMs: 500 })
  const issued = clock.now()
  const remote = (START_MS + 501) * HLC_TICKS_PER_MS
  t.throws(() => clock.update(remote), ClockSkewError)
  t.equal(clock.last(), issued)
  t.equal(clock.now(), issued + 1)
  t.throws(() => clock.update(-1), TypeError)
  t.throws(() => clock.update(1.5), TypeError)
})

t.test('with the next reservation stuck, ticks stay under the saved ceiling and then refuse until it lands', async t => {
  const { clock, wall, highWater } = await startedClock(t, { maxSkewMs: 100 })
  const ceiling = highWater.stored
  highWater.holding = true
  // A stall shorter than REFILL_AFTER_LAST_TICK_MS: the refill is not idle, so now() creeps.
  wall.ms += 5_000
  let issued = 0
  let thrown: unknown
  // The window is 50 ms = 50 000 ticks; more iterations than that must hit the ceiling.
  for (let i = 0; i < 60_000; i++) {
    try {
      const tick = clock.now()
      if (tick > ceiling) t.fail(`tick ${tick} beyond the saved ceiling ${ceiling}`)
      issued++
    } catch (error) {
      thrown = error
      break
    }
  }
  t.type(thrown, ClockExhaustedError)
  t.equal(clock.last(), ceiling, 'used the window up to the ceiling exactly')
  await highWater.release()
  t.equal(clock.now(), wall.ms * HLC_TICKS_PER_MS, 'back on the wall clock once the reservation is saved')
  t.equal(issued, 50_001, 'crept from the wall time of the reservation up to its ceiling')
})

t.test('an update past the saved ceiling holds back local ticks until the reservation covering it is saved', async t => {
  const { clock, wall, highWater } = await startedClock(t, { maxSkewMs: 1000 })
  clock.now()
  highWater.holding = true
  const remote = (wall.ms + 900) * HLC_TICKS_PER_MS
  t.ok(remote > highWater.stored, 'the remote reading is beyond the 500 ms window')
  t.ok(clock.update(remote) > remote)
  t.throws(() => clock.now(), ClockExhaustedError)
  await highWater.release()
  // The save in flight when update() ran may predate it; the clock reserves again by itself.
  for (let i = 0; i < 10 && highWater.stored <= remote; i++) await nextTurn()
  t.ok(clock.now() > remote)
})

t.test('a failed background save is reported and retried', async t => {
  const errors: unknown[] = []
  const { clock, wall, highWater } = await startedClock(t, { maxSkewMs: 1000, onSaveError: error => errors.push(error) })
  const ceiling = highWater.stored
  highWater.failNext = true
  wall.ms += 400
  clock.now()
  await nextTurn()
  t.equal(errors.length, 1)
  t.equal(highWater.stored, ceiling, 'nothing was saved')
  wall.ms += 2000
  clock.now()
  await nextTurn()
  t.ok(highWater.stored > ceiling, 'the retry saved a new ceiling')
})

t.test('now() before start() is a programming error', async t => {
  const clock = new HybridLogicalClock({ nowMs: () => START_MS, maxSkewMs: 500, highWater: new MemoryHighWaterMark(), clock: systemClock })
  t.throws(() => clock.now())
  t.throws(() => new HybridLogicalClock({ nowMs: () => START_MS, maxSkewMs: 0, highWater: new MemoryHighWaterMark(), clock: systemClock }), RangeError)
})

t.test('next() waits for a slow ceiling save instead of failing when the window is used up', async t => {
  const { clock, wall, highWater } = await startedClock(t)
  highWater.holding = true
  // The wall clock races far past the durable ceiling while the next reservation is held, and
  // now() uses up the ticks left below the ceiling.
  wall.ms += 60_000
  let last = 0
  t.throws(() => { for (let i = 0; i < 10_000_000; i++) last = clock.now() }, ClockExhaustedError, 'now() fails fast once the window is used up')
  let settled = false
  const pending = clock.next().then(tick => { settled = true; return tick })
  for (let i = 0; i < 5; i++) await nextTurn()
  t.notOk(settled, 'next() is still waiting for the save')
  await highWater.release()
  const tick = await pending
  t.ok(tick > last, 'the tick after the wait is above every earlier one')
  t.ok(tick <= highWater.stored, 'and within the ceiling that is now durable')
})

/** A clock whose refill timer and wall clock both run on a FakeClock, so idle time passes exactly. */
async function fakeTimedClock(t: Test) {
  const clock = new FakeClock(START_MS)
  const highWater = new MemoryHighWaterMark()
  const hlc = new HybridLogicalClock({ nowMs: () => clock.nowMs(), maxSkewMs: 500, highWater, clock })
  await hlc.start()
  t.teardown(() => hlc.stop())
  return { hlc, clock, highWater }
}

t.test('an idle clock stops saving its ceiling, and the first tick after the pause waits for a fresh one', async t => {
  const { hlc, clock, highWater } = await fakeTimedClock(t)
  hlc.now()
  await clock.advance(REFILL_AFTER_LAST_TICK_MS)
  const savesWhileActive = highWater.saves
  t.ok(savesWhileActive > 10, `the refill kept the ceiling ahead while ticks were recent (${savesWhileActive} saves)`)
  await clock.advance(1_000)
  const idleSaves = highWater.saves
  await clock.advance(60_000)
  t.equal(highWater.saves, idleSaves, 'no save in a minute without ticks')
  const remote = hlc.last() + 1
  hlc.update(remote)
  await nextTurn()
  t.equal(highWater.saves, idleSaves, 'a remote reading below the ceiling reserves nothing while idle')
  const wallTicks = clock.nowMs() * HLC_TICKS_PER_MS
  t.ok(highWater.stored < wallTicks, 'the ceiling now lags the wall clock')
  t.throws(() => hlc.now(), ClockExhaustedError, 'now() does not creep from the time of the last save')
  const tick = await hlc.next()
  t.ok(tick >= wallTicks, 'the first tick after the pause is on the wall clock, not the time of the last save')
  t.ok(tick <= highWater.stored, 'and within the ceiling saved for it')
})

t.test('ticks within REFILL_AFTER_LAST_TICK_MS of each other never wait for a save', async t => {
  const { hlc, clock } = await fakeTimedClock(t)
  for (let i = 0; i < 20; i++) {
    await clock.advance(REFILL_AFTER_LAST_TICK_MS / 2)
    const wallTicks = clock.nowMs() * HLC_TICKS_PER_MS
    t.equal(hlc.now(), wallTicks, `tick ${i} is the wall clock at once`)
  }
})

t.test('the refill timer fires once per save while ticks are recent, and an idle clock keeps no timer at all', async t => {
  const { hlc, clock, highWater } = await fakeTimedClock(t)
  let timers = 0
  const setTimeout = clock.setTimeout.bind(clock)
  clock.setTimeout = (callback, delayMs) => { timers++; return setTimeout(callback, delayMs) }
  hlc.now()
  const savesBefore = highWater.saves
  await clock.advance(REFILL_AFTER_LAST_TICK_MS)
  const saves = highWater.saves - savesBefore
  t.ok(saves > 10, `the ceiling was kept ahead (${saves} saves)`)
  // Polling a quarter window (62 ms) set about 160 timers in these 10 s for the same saves.
  t.ok(timers <= saves + 2, `${timers} timers for ${saves} saves`)
  await clock.advance(1_000)
  t.equal(clock.pendingTimers, 0, 'an idle clock has no timer pending')
  const idleTimers = timers
  await clock.advance(60_000)
  t.equal(timers, idleTimers, 'and sets none in a minute without ticks')
  await hlc.next()
  t.equal(clock.pendingTimers, 1, 'the next tick sets the refill again')
})
