import t from 'tap'
import { asNodeId } from '../../lib/clock/version.js'
import { ClusterView, type ClusterState, type ViewMember } from '../../lib/dashboard/cluster-view.js'
import type { NodeSummary } from '../../lib/dashboard/messages.js'
import { FakeClock } from '../../lib/runtime/clock.js'

const A = asNodeId('00000000000000a1')
const B = asNodeId('00000000000000b2')
const C = asNodeId('00000000000000c3')

function summary(id: string, name: string): NodeSummary {
  return { id, name, version: '0.1.0', status: 'ok', uptimeSeconds: 1, keys: 0, storeBytes: 0, hintsPending: 0, digest: '0', members: [], samples: [], hintedPartitions: [], syncingPartitions: [] }
}

t.test('peers are asked only while a page watches; dead and silent ones keep their last summary with an error', async t => {
  const clock = new FakeClock(1_000)
  const members: ViewMember[] = [
    { id: A, name: 'alpha', peer: 'a', state: 'alive' }, { id: B, name: 'bravo', peer: 'b', state: 'alive' }, { id: C, name: 'charlie', peer: 'c', state: 'alive' },
  ]
  let asked = 0
  let charlieAnswers = true
  const view = new ClusterView({
    localId: A, clock, localSummary: () => summary(A, 'alpha'), members: () => members,
    request: async (peer) => {
      asked++
      if (peer === 'c' && !charlieAnswers) throw new Error('no answer within 1000 ms')
      return { type: 'nodeSummaryReply', body: summary(peer === 'b' ? B : C, peer === 'b' ? 'bravo' : 'charlie') }
    },
    partitionCount: 10, replicationFactor: 2, replicas: (p) => p % 2 === 0 ? [A, B] : [B, C],
    rounds: () => [], refreshIntervalMs: 2000, requestTimeoutMs: 1000, maxSubscribers: 1,
  })
  await clock.advance(10_000)
  t.equal(asked, 0, 'nobody watching: nobody asked')
  const states: ClusterState[] = []
  const unsubscribe = view.subscribe((state) => states.push(state))!
  t.equal(view.subscribe(() => {}), undefined, 'maxSubscribers watch already')
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
  await settle()
  t.equal(states.length, 1)
  t.same(states[0]!.nodes.map((n) => [n.name, n.summary?.name, n.error]), [['alpha', 'alpha', undefined], ['bravo', 'bravo', undefined], ['charlie', 'charlie', undefined]])
  t.same(states[0]!.partitions.members.map((m) => [m.name, Buffer.from(m.held, 'base64').toString('hex')]), [['alpha', '5501'], ['bravo', 'ff03'], ['charlie', 'aa02']], 'one bitmap per member, partition p = bit p')
  charlieAnswers = false
  members[1] = { ...members[1]!, state: 'dead' }
  await clock.advance(2000)
  await settle()
  t.equal(states.length, 2)
  const last = states.at(-1)!
  t.match(last.nodes[1], { name: 'bravo', summary: { name: 'bravo' }, error: 'the member is dead' })
  t.match(last.nodes[2], { name: 'charlie', summary: { name: 'charlie' }, error: /no answer/ })
  unsubscribe()
  const before = asked
  await clock.advance(10_000)
  t.equal(asked, before, 'the last page gone: polling stops')
})
