import t from 'tap'
import { asNodeId } from '../../lib/clock/version.js'
import { minSuspicionTimeoutMs, Suspicion, suspicionTimeoutAfterConfirmationsMs } from '../../lib/membership/suspicion.js'

const a = asNodeId('000000000000000a')
const b = asNodeId('000000000000000b')
const c = asNodeId('000000000000000c')
const d = asNodeId('000000000000000d')
const e = asNodeId('000000000000000e')

t.test('the minimum timeout grows with log10 of the cluster size, never below one interval multiple', async t => {
  t.equal(minSuspicionTimeoutMs(4, 1, 1000), 4000)
  t.equal(minSuspicionTimeoutMs(4, 10, 1000), 4000)
  t.equal(minSuspicionTimeoutMs(4, 100, 1000), 8000)
  t.equal(minSuspicionTimeoutMs(4, 1000, 1000), 12000)
})

t.test('a suspicion expecting confirmations starts at the maximum timeout', async t => {
  const suspicion = new Suspicion({ accuser: a, k: 3, minMs: 8000, maxMs: 48000, nowMs: 1000 })
  t.equal(suspicion.deadlineMs, 49000)
})

t.test('a suspicion expecting no confirmations starts at the minimum timeout', async t => {
  const suspicion = new Suspicion({ accuser: a, k: 0, minMs: 4000, maxMs: 24000, nowMs: 0 })
  t.equal(suspicion.deadlineMs, 4000)
  t.notOk(suspicion.confirm(b), 'nothing to confirm')
})

t.test('each independent confirmation shortens the timeout until k reach the minimum', async t => {
  const suspicion = new Suspicion({ accuser: a, k: 3, minMs: 8000, maxMs: 48000, nowMs: 0 })
  const deadlines = [suspicion.deadlineMs]
  t.ok(suspicion.confirm(b))
  deadlines.push(suspicion.deadlineMs)
  t.ok(suspicion.confirm(c))
  deadlines.push(suspicion.deadlineMs)
  t.ok(suspicion.confirm(d))
  deadlines.push(suspicion.deadlineMs)
  // max − (max − min)·log(n+1)/log(k+1): one confirmation of three halves the gap.
  t.same(deadlines, [48000, 28000, Math.floor(48000 - 40000 * Math.log(3) / Math.log(4)), 8000])
  t.notOk(suspicion.confirm(e), 'past k, confirmations no longer count')
  t.equal(suspicion.deadlineMs, 8000)
  t.equal(suspicion.confirmations, 3)
})

t.test('the first accuser and repeated accusers are not counted again', async t => {
  const suspicion = new Suspicion({ accuser: a, k: 3, minMs: 8000, maxMs: 48000, nowMs: 0 })
  t.notOk(suspicion.confirm(a), 'our own suspicion gossiped back is not a confirmation')
  t.ok(suspicion.confirm(b))
  t.notOk(suspicion.confirm(b))
  t.equal(suspicion.confirmations, 1)
})

t.test('the timeout never falls below the minimum', async t => {
  t.equal(suspicionTimeoutAfterConfirmationsMs(10, 3, 8000, 48000), 8000)
  t.equal(suspicionTimeoutAfterConfirmationsMs(0, 3, 8000, 48000), 48000)
})
