import t from 'tap'
import type { OpOutcome } from '../../lib/bench/closed-loop.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import { runOpenLoop, type OpenLoopSample } from '../../lib/bench/open-loop.js'

const STALL_MS = 200

t.test('a server that stalls once shows in the open loop: every operation scheduled during the stall waited for it', async t => {
  // On a fake clock, so the stall and the schedule are exact however busy the machine is.
  const clock = new FakeClock(1_000_000)
  const STALLED_INDEX = 30
  let calls = 0
  const samples: OpenLoopSample[] = []
  const run = runOpenLoop({
    ratePerSecond: 100,
    maxInFlight: 1,
    durationMs: 2000,
    clock,
    // Each operation takes 1 ms, except one that the "server" holds STALL_MS.
    operation: () => {
      const delayMs = calls++ === STALLED_INDEX ? STALL_MS : 1
      return new Promise<OpOutcome>(resolve => clock.setTimeout(() => resolve({ kind: 'get', ok: true }), delayMs))
    },
    onRecorded: sample => samples.push(sample),
  })
  let finished = false
  void run.then(() => { finished = true }, () => { finished = true })
  for (let i = 0; i < 1000 && !finished; i++) await clock.advance(10)
  t.ok(finished, 'the 2 s schedule ran to its end in simulated time')
  const result = await run
  t.equal(result.total.count + result.schedule.notStarted, result.schedule.scheduled, 'every scheduled operation was run or counted as not started')
  t.equal(result.schedule.scheduled, 200)
  const stalled = samples.find(sample => sample.index === STALLED_INDEX)
  t.ok(stalled, 'the stalled request was recorded')
  if (stalled === undefined) return
  const stallEnd = stalled.startedAt + STALL_MS
  t.equal(stalled.latencyMs, STALL_MS, 'the stalled request took the stall')
  const queued = samples.filter(sample => sample.index > stalled.index && sample.scheduledAt < stallEnd)
  t.equal(queued.length, STALL_MS / 10 - 1, `the operations scheduled in the ${STALL_MS} ms after it queued behind it`)
  for (const sample of queued) {
    if (sample.latencyMs < stallEnd - sample.scheduledAt) t.fail(`operation ${sample.index} hid its wait: ${sample.latencyMs} ms`)
  }
  t.ok(queued.filter(sample => sample.latencyMs >= STALL_MS / 2).length >= 8, 'the first half of them waited at least half the stall')
  t.ok(result.schedule.heldBack >= queued.length, `they are counted as held back: ${result.schedule.heldBack}`)
  t.ok(result.total.latencyMs.max >= STALL_MS, `max ${result.total.latencyMs.max}`)
  // 200 scheduled, at least 8 recorded at ≥ 100 ms: the top 1 % lies in the stall's queue.
  t.ok(result.total.latencyMs.p99 >= STALL_MS / 2, `p99 ${result.total.latencyMs.p99} reflects the queue behind the stall`)
  t.ok(samples.filter(sample => sample.index > STALLED_INDEX + queued.length + 5).every(sample => sample.latencyMs <= 1.5), 'once the queue drained, operations took their 1 ms again')
})

t.test('the schedule is kept: operations start no earlier than scheduled and the count is exact', async t => {
  // On a fake clock: on the real one a busy machine falls behind a 2 ms schedule.
  const clock = new FakeClock(1_000_000)
  const starts: number[] = []
  const samples: OpenLoopSample[] = []
  const run = runOpenLoop({
    ratePerSecond: 500,
    maxInFlight: 8,
    ops: 50,
    warmupMs: 20,
    clock,
    operation(slot) {
      t.ok(slot >= 0 && slot < 8, 'slots are within the in-flight bound')
      starts.push(clock.monotonicMs())
      return new Promise<OpOutcome>(resolve => clock.setTimeout(() => resolve({ kind: 'put', ok: true }), 1))
    },
    onRecorded: sample => samples.push(sample),
  })
  let finished = false
  void run.then(() => { finished = true }, () => { finished = true })
  for (let i = 0; i < 1000 && !finished; i++) await clock.advance(1)
  t.ok(finished, 'the schedule ran to its end in simulated time')
  const result = await run
  t.equal(result.total.count, 50, 'exactly --ops recorded operations')
  t.equal(starts.length, 60, 'plus the 10 scheduled during the 20 ms warm-up, run but not recorded')
  t.same(samples.map(sample => sample.index).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 10))
  for (const sample of samples) {
    if (sample.startedAt < sample.scheduledAt) t.fail(`operation ${sample.index} started before its time`)
    if (Math.abs(sample.latencyMs - (sample.latencyMs + sample.scheduledAt - sample.scheduledAt)) > 0) t.fail('latency is from the schedule')
  }
  t.equal(result.schedule.notStarted, 0)
})

t.test('never more than maxInFlight at once; what cannot start before the schedule ends is counted, not run', async t => {
  let inFlight = 0
  let mostInFlight = 0
  let started = 0
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  const clock = new FakeClock(1_000_000)
  const run = runOpenLoop({
    ratePerSecond: 1000,
    maxInFlight: 3,
    durationMs: 50,
    clock,
    async operation() {
      started++
      inFlight++
      mostInFlight = Math.max(mostInFlight, inFlight)
      await gate
      inFlight--
      return { kind: 'get', ok: false, error: 'timeout' }
    },
  })
  // Hold the three slots until the whole 50 ms schedule is due, in simulated time.
  for (let i = 0; i < 60; i++) await clock.advance(1)
  t.equal(started, 3, 'only the three slots started while they were held')
  release()
  const result = await run
  t.equal(mostInFlight, 3)
  t.equal(result.schedule.scheduled, 50)
  t.equal(result.total.count, started, 'every started operation is recorded (failures too)')
  t.equal(result.total.count + result.schedule.notStarted, 50)
  t.ok(result.schedule.notStarted > 0, `the backlog was dropped at the end of the schedule: ${result.schedule.notStarted}`)
  t.same(result.total.errors, { timeout: result.total.count })
})

t.test('bad options are refused', async t => {
  const operation = async (): Promise<OpOutcome> => ({ kind: 'put', ok: true })
  await t.rejects(runOpenLoop({ ratePerSecond: 0, maxInFlight: 1, ops: 1, operation }), /ratePerSecond must be above 0/)
  await t.rejects(runOpenLoop({ ratePerSecond: 10, maxInFlight: 0, ops: 1, operation }), /maxInFlight must be a whole number/)
  await t.rejects(runOpenLoop({ ratePerSecond: 10, maxInFlight: 1, operation }), /give durationMs or ops/)
})
