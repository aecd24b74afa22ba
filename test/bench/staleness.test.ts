import t from 'tap'
import type { HearsayClient } from '../../lib/client/client.js'
import { StalenessProbe } from '../../lib/bench/staleness.js'

/** A node that answers every read with the given version (undefined: no value; 'error': fails). */
function reader(answer: string | undefined | 'error'): HearsayClient {
  return {
    async get(_key: string, options: { r?: unknown }) {
      if (options.r !== 1) throw new Error('staleness reads must use R=1')
      if (answer === 'error') throw new Error('connection refused')
      return answer === undefined ? undefined : { value: Buffer.from('x'), version: answer }
    },
  } as unknown as HearsayClient
}

t.test('a replica is stale with no value or an older version, fresh with the same or newer', async t => {
  const probe = new StalenessProbe({
    readers: [reader(undefined), reader('0001-a'), reader('0002-a'), reader('0003-a'), reader('error')],
    sampleEvery: 1,
    settleMs: 1,
  })
  probe.onAckedWrite({ key: 'k', version: '0002-a', startedAtMs: 0 })
  const counts = await probe.finish()
  t.equal(counts.sampledWrites, 1)
  t.equal(counts.nodes, 5)
  for (const phase of [counts.immediate, counts.afterSettle]) t.same(phase, { reads: 5, stale: 2, fresh: 2, failed: 1 })
})

t.test('every k-th acknowledged write is sampled, up to the bound', async t => {
  const probe = new StalenessProbe({ readers: [reader('9999-z'), reader('9999-z')], sampleEvery: 3, settleMs: 1, maxSamples: 4 })
  for (let i = 0; i < 30; i++) probe.onAckedWrite({ key: `k${i}`, version: '0001-a', startedAtMs: 0 })
  const counts = await probe.finish()
  t.equal(counts.sampledWrites, 4, 'writes 0, 3, 6, 9; then the bound')
  t.equal(counts.immediate.reads, 8)
  t.equal(counts.afterSettle.fresh, 8)
})

t.test('a probe without nodes to read from is refused', async t => {
  t.throws(() => new StalenessProbe({ readers: [], sampleEvery: 1, settleMs: 1 }), RangeError)
})
