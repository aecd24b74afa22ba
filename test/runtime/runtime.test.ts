import t from 'tap'
import { FakeClock, offsetClock, repeatEvery, sleep } from '../../lib/runtime/clock.js'
import { createRandom } from '../../lib/runtime/random.js'
import { ClockScheduler, cronPeriodMs } from '../../lib/runtime/scheduler.js'
import { NodeClock } from '../../lib/sim/node-clock.js'

t.test('cronPeriodMs reads the period of "every N" expressions', async t => {
  t.equal(cronPeriodMs('*/30 * * * * *'), 30_000)
  t.equal(cronPeriodMs('*/5 * * * * *'), 5000)
  t.equal(cronPeriodMs('* * * * * *'), 1000)
  t.equal(cronPeriodMs('*/2 * * * *'), 120_000, 'five fields start with minutes')
  t.equal(cronPeriodMs('0 3 * * *'), 60_000, 'anything else: a minute')
})

t.test('ClockScheduler runs a job every period on the clock, first at a random phase, never overlapping', async t => {
  const clock = new FakeClock(0)
  const scheduler = new ClockScheduler({ clock, random: createRandom(1) })
  const runs: number[] = []
  let release: (() => void) | undefined
  const job = scheduler.every('*/5 * * * * *', 'test', async () => {
    runs.push(clock.nowMs())
    if (runs.length === 2) await new Promise<void>((resolve) => { release = resolve })
  })
  await clock.advance(5000)
  t.equal(runs.length, 1, 'one run within the first period')
  const first = runs[0]!
  await clock.advance(5000)
  t.same(runs, [first, first + 5000])
  await clock.advance(10_000)
  t.equal(runs.length, 2, 'a run still in progress makes the next ones skip')
  release?.()
  await new Promise((resolve) => setImmediate(resolve))
  await clock.advance(5000)
  t.equal(runs.length, 3)
  await job.stop()
  await clock.advance(20_000)
  t.equal(runs.length, 3, 'no run after stop()')
})

t.test('repeatEvery, sleep and offsetClock run on the clock they are given', async t => {
  const clock = new FakeClock(1000)
  const ticks: number[] = []
  const repeating = repeatEvery(clock, 100, () => ticks.push(clock.nowMs()))
  await clock.advance(350)
  t.same(ticks, [1100, 1200, 1300])
  repeating.stop()
  await clock.advance(1000)
  t.equal(ticks.length, 3, 'stopped')
  let slept = false
  void sleep(clock, 50).then(() => { slept = true })
  await clock.advance(49)
  t.equal(slept, false)
  await clock.advance(1)
  t.equal(slept, true)
  const aborted = new AbortController()
  const waiting = sleep(clock, 1000, aborted.signal)
  aborted.abort()
  await t.rejects(waiting, { name: 'AbortError' })
  t.equal(offsetClock(clock, 250).nowMs(), clock.nowMs() + 250)
})

t.test('a NodeClock reads the shared time with its skew, and runs nothing once halted', async t => {
  const base = new FakeClock(0)
  const node = new NodeClock(base, -300)
  t.equal(node.nowMs(), -300)
  const fired: string[] = []
  node.setTimeout(() => fired.push('before'), 10)
  node.setTimeout(() => fired.push('after the crash'), 20)
  await base.advance(15)
  node.halt()
  node.setTimeout(() => fired.push('set while halted'), 1)
  await base.advance(100)
  t.same(fired, ['before'])
  t.equal(node.pendingTimers, 0)
})
