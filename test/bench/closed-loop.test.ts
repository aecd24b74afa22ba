import { setImmediate as nextMacrotask, setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { runClosedLoop, type LoadProgress, type OpOutcome } from '../../lib/bench/closed-loop.js'

t.test('--ops runs exactly that many operations and counts every outcome', async t => {
  let calls = 0
  const result = await runClosedLoop({
    concurrency: 7,
    ops: 200,
    async operation(): Promise<OpOutcome> {
      const n = calls++
      await nextMacrotask()
      if (n % 10 === 0) return { kind: 'put', ok: false, error: 'unavailable_503' }
      if (n % 25 === 1) throw new Error('a bug in the operation')
      return { kind: n % 2 === 0 ? 'put' : 'get', ok: true }
    },
  })
  t.equal(calls, 200)
  t.equal(result.total.count, 200)
  const errors = Object.values(result.total.errors).reduce((sum, count) => sum + count, 0)
  t.equal(result.total.errors['unavailable_503'], 20)
  t.equal(result.total.errors['exception'], 8, 'a thrown error is counted, not propagated')
  const kinds = (result.byKind.put?.count ?? 0) + (result.byKind.get?.count ?? 0)
  t.equal(kinds + result.total.errors['exception']!, result.total.count, 'byKind holds everything but the exceptions')
  t.ok(result.total.count - errors > 0)
})

t.test('never more operations in flight than the concurrency, and every worker is used', async t => {
  let inFlight = 0
  let mostInFlight = 0
  const workers = new Set<number>()
  await runClosedLoop({
    concurrency: 5,
    ops: 100,
    async operation(worker) {
      workers.add(worker)
      inFlight++
      mostInFlight = Math.max(mostInFlight, inFlight)
      await nextMacrotask()
      inFlight--
      return { kind: 'get', ok: true }
    },
  })
  t.equal(mostInFlight, 5)
  t.same([...workers].sort(), [0, 1, 2, 3, 4])
})

t.test('a duration stops issuing; operations that finish instantly do not starve the timers', async t => {
  const progress: LoadProgress[] = []
  const result = await runClosedLoop({
    concurrency: 2,
    // Two progress intervals and more: on a loaded machine a stall of a few hundred ms past the
    // first interval must not end the run before the timer had its turn (seen at load 10).
    durationMs: 2600,
    operation: async () => ({ kind: 'put', ok: true }),
    onProgress: update => progress.push(update),
  })
  t.ok(result.total.count > 0)
  t.ok(result.elapsedMs >= 2600, 'the run lasted its duration')
  t.ok(progress.length >= 1, 'progress was reported while it ran')
  t.ok(progress.every(update => update.errors === 0 && update.completed <= result.total.count))
})

t.test('operations started during the warm-up are not recorded', async t => {
  let calls = 0
  const result = await runClosedLoop({
    concurrency: 1,
    ops: 3,
    warmupMs: 50,
    async operation() {
      calls++
      await sleep(5)
      return { kind: 'get', ok: true }
    },
  })
  t.equal(result.total.count, 3)
  t.ok(calls > 3, `warm-up operations ran too (${calls} calls)`)
})

t.test('options that cannot end or make no sense are refused', async t => {
  const operation = async (): Promise<OpOutcome> => ({ kind: 'get', ok: true })
  await t.rejects(runClosedLoop({ concurrency: 1, operation }), /give durationMs or ops/)
  await t.rejects(runClosedLoop({ concurrency: 0, ops: 1, operation }), /concurrency must be/)
  await t.rejects(runClosedLoop({ concurrency: 1, ops: 0, operation }), /ops must be/)
  await t.rejects(runClosedLoop({ concurrency: 1, durationMs: -1, operation }), /durationMs must be/)
  await t.rejects(runClosedLoop({ concurrency: 1, ops: 1, warmupMs: Number.NaN, operation }), /warmupMs must be/)
})
