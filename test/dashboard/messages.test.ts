import t from 'tap'
import { validateNodeSummaryReply, type NodeSummary } from '../../lib/dashboard/messages.js'

const summary: NodeSummary = {
  id: '00000000000000a1', name: 'alpha', version: '0.1.0', status: 'ok', uptimeSeconds: 12, keys: 3, storeBytes: 4096, hintsPending: 0,
  digest: '00000000000000ff',
  members: [{ id: '00000000000000a1', name: 'alpha', state: 'alive', incarnation: 2, rttMs: null }, { id: '00000000000000b2', name: 'bravo', state: 'dead', incarnation: 1, rttMs: 0.4 }],
  samples: [{ atMs: 1, opsPerSecond: 2.5, p99Ms: null }],
  hintedPartitions: [3], syncingPartitions: [],
}

t.test('a node summary reply round-trips through its validator', async t => {
  t.same(validateNodeSummaryReply(summary), summary)
})

t.test('a malformed summary is refused with the field named', async t => {
  t.throws(() => validateNodeSummaryReply({ ...summary, status: 'great' }), /nodeSummaryReply.status/)
  t.throws(() => validateNodeSummaryReply({ ...summary, samples: [{ atMs: 1, opsPerSecond: Number.NaN, p99Ms: null }] }), /samples\[0\].opsPerSecond/)
  t.throws(() => validateNodeSummaryReply({ ...summary, members: Array.from({ length: 257 }, () => summary.members[0]) }), /more than 256/)
  t.throws(() => validateNodeSummaryReply({ ...summary, hintedPartitions: [70_000] }), /hintedPartitions\[0\]/)
  t.throws(() => validateNodeSummaryReply({ ...summary, members: [{ ...summary.members[0], rttMs: -1 }] }), /rttMs/)
  const { digest: _digest, ...withoutDigest } = summary
  t.throws(() => validateNodeSummaryReply(withoutDigest), /digest/)
})
