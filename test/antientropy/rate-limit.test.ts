import t from 'tap'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { ByteRateLimiter, forEachLimited } from '../../lib/antientropy/rate-limit.js'
import { systemClock, type Clock } from '../../lib/runtime/clock.js'

/**
 * take() resolves at once when the bytes fit and sleeps otherwise. With an already aborted signal
 * the sleep rejects at once, so "would it wait?" is answered without waiting on the wall clock.
 */
async function waits(limiter: ByteRateLimiter, bytes: number): Promise<boolean> {
  return limiter.take(bytes, AbortSignal.abort()).then(() => false, (error: unknown) => {
    if ((error as Error).name !== 'AbortError') throw error
    return true
  })
}

/** Readings the test moves by hand; timers on the system clock (the waits here are aborted, never run). */
function fakeClock(startMs = 1_000_000): Clock & { advance: (ms: number) => void } {
  let now = startMs
  return { nowMs: () => now, monotonicMs: () => now, setTimeout: systemClock.setTimeout, clearTimeout: systemClock.clearTimeout, advance: (ms) => { now += ms } }
}

t.test('a rate of 0 is unlimited: take() never waits', async t => {
  const limiter = new ByteRateLimiter(0, fakeClock())
  for (let i = 0; i < 10; i++) t.equal(await waits(limiter, 1e12), false, `take ${i + 1} of a terabyte`)
})

t.test('a rate must be a non-negative integer', async t => {
  for (const rate of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) t.throws(() => new ByteRateLimiter(rate, systemClock), RangeError, `rate ${rate}`)
})

t.test('one second of rate passes at once; a byte more waits', async t => {
  const clock = fakeClock()
  const limiter = new ByteRateLimiter(1000, clock)
  t.equal(await waits(limiter, 600), false)
  t.equal(await waits(limiter, 400), false, 'the burst is exactly one second of rate')
  t.equal(await waits(limiter, 1), true, 'over the burst it waits')
})

t.test('a debt is paid back at the rate, by the clock', async t => {
  const clock = fakeClock()
  const limiter = new ByteRateLimiter(1000, clock)
  t.equal(await waits(limiter, 1500), true, '1500 bytes against a 1000-byte burst wait')
  // The debt is 500 bytes: half a second at 1000 B/s.
  clock.advance(499)
  t.equal(await waits(limiter, 0), true, 'still in debt after 499 ms')
  clock.advance(1)
  t.equal(await waits(limiter, 0), false, 'paid back after 500 ms')
  t.equal(await waits(limiter, 1), true, 'and nothing more saved up')
})

t.test('tokens refill up to the burst only, and never from a clock going back', async t => {
  const clock = fakeClock()
  const limiter = new ByteRateLimiter(1000, clock)
  t.equal(await waits(limiter, 1000), false)
  clock.advance(60_000)
  t.equal(await waits(limiter, 1000), false, 'a minute idle refills one burst')
  t.equal(await waits(limiter, 1), true, 'not a minute of bytes')
  clock.advance(-10_000)
  t.equal(await waits(limiter, 0), true, 'the clock stepping back adds nothing')
})

t.test('a waiting take() stays pending until its signal aborts it', async t => {
  const clock = fakeClock()
  const limiter = new ByteRateLimiter(1000, clock)
  const abort = new AbortController()
  let settled = false
  const taking = limiter.take(3000, abort.signal).finally(() => { settled = true })
  for (let i = 0; i < 5; i++) await nextTurn()
  t.equal(settled, false, 'waits for the 2 s debt')
  abort.abort()
  await t.rejects(taking, { name: 'AbortError' })
})

/** A work function whose items each wait for the test to finish them. */
function controlledWork<T>(): {
  work: (item: T) => Promise<void>
  started: T[]
  inFlight: () => number
  oldestInFlight: () => T | undefined
  maxInFlight: () => number
  finish: (item: T, error?: Error) => void
} {
  const pending = new Map<T, { resolve: () => void; reject: (error: Error) => void }>()
  const started: T[] = []
  let max = 0
  return {
    started,
    work: (item) => new Promise<void>((resolve, reject) => {
      started.push(item)
      pending.set(item, { resolve, reject })
      max = Math.max(max, pending.size)
    }),
    inFlight: () => pending.size,
    oldestInFlight: () => started.find((item) => pending.has(item)),
    maxInFlight: () => max,
    finish: (item, error) => {
      const entry = pending.get(item)
      if (entry === undefined) throw new Error(`item ${String(item)} is not in flight`)
      pending.delete(item)
      if (error === undefined) entry.resolve()
      else entry.reject(error)
    },
  }
}

t.test('forEachLimited runs every item with at most `limit` in flight', async t => {
  const items = Array.from({ length: 10 }, (_, i) => i)
  const work = controlledWork<number>()
  let done = false
  const all = forEachLimited(items, 3, work.work).then(() => { done = true })
  for (let turn = 0; turn < 100 && !done; turn++) {
    await nextTurn()
    t.ok(work.inFlight() <= 3, 'never more than 3 in flight')
    const oldest = work.oldestInFlight()
    if (oldest !== undefined) work.finish(oldest)
  }
  await all
  t.equal(work.maxInFlight(), 3, 'the limit is used')
  t.same([...work.started].sort((a, b) => a - b), items, 'every item ran once')
})

t.test('forEachLimited: a limit above the item count, and no items', async t => {
  const seen: number[] = []
  await forEachLimited([1, 2], 8, async (item) => { seen.push(item) })
  t.same(seen, [1, 2])
  await forEachLimited([], 3, async () => { throw new Error('no item to run') })
})

t.test('forEachLimited starts nothing after the first failure and rejects once the work in flight settled', async t => {
  const work = controlledWork<number>()
  let outcome: unknown
  let settled = false
  const all = forEachLimited([0, 1, 2, 3, 4, 5], 2, work.work).then(() => undefined, (error: unknown) => error).then((value) => { outcome = value; settled = true })
  await nextTurn()
  t.same(work.started, [0, 1])
  const failure = new Error('item 0 failed')
  work.finish(0, failure)
  for (let i = 0; i < 5; i++) await nextTurn()
  t.same(work.started, [0, 1], 'no item starts after the failure')
  t.equal(settled, false, 'item 1 is still in flight: not settled yet')
  work.finish(1, new Error('a later failure'))
  await all
  t.equal(outcome, failure, 'rejects with the first failure')
  t.same(work.started, [0, 1])
})
