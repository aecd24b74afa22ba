import t from 'tap'
import { measureBounds } from '../../bench/compare/bounds.js'

t.test('the CAS floors are measured on this machine and add up as their parts say', async t => {
  const bounds = await measureBounds()
  for (const [name, ms] of Object.entries(bounds)) {
    t.ok(Number.isFinite(ms) && ms > 0, `${name} is a positive time (${ms} ms)`)
  }
  t.equal(bounds.casFloorMs, 2 * bounds.loopbackRoundTripP50Ms + 2 * bounds.fsyncP50Ms, 'issue 13: 2 round trips + 2 fsyncs')
  t.equal(bounds.loneCasFloorMs, 2 * bounds.processRoundTripP50Ms + bounds.journalSyncP50Ms, 'separate processes: 2 round trips to another process + 1 journal sync')
})
