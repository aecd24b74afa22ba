import t from 'tap'
import { asNodeId, type NodeId } from '../../lib/clock/version.js'
import { HearsayError } from '../../lib/errors.js'
import { Coordinator, type CoordinatorOptions, type ReplicaMember } from '../../lib/replication/coordinator.js'
import { FakeClock } from '../../lib/runtime/clock.js'

const LOCAL = asNodeId('00000000000000a1')
const B = asNodeId('00000000000000b2')
const C = asNodeId('00000000000000c3')

/** A coordinator of three replicas whose peers ack every write; only member states change. */
function coordinator(clock: FakeClock, states: Map<NodeId, ReplicaMember['state']>, waitForReplicasMs: number): { coordinator: Coordinator; sent: NodeId[] } {
  const sent: NodeId[] = []
  let hlc = 1_000_000
  const options: CoordinatorOptions = {
    localId: LOCAL,
    local: { apply: async () => ({ applied: true }), get: () => undefined, rawRange: () => [] } as unknown as CoordinatorOptions['local'],
    nextHlc: async () => ++hlc,
    nowMs: () => clock.nowMs(),
    clock,
    observeHlc: () => {},
    replicasFor: () => [LOCAL, B, C],
    member: (id) => states.has(id) ? { peer: `peer-${id}`, state: states.get(id)! } : undefined,
    aliveMembers: () => [...states].filter(([, s]) => s === 'alive').map(([id]) => id),
    holdsEverything: () => true,
    request: async (to) => { sent.push(to as unknown as NodeId); return { type: 'replicaWriteReply', body: { applied: [true] } } },
    hint: undefined,
    replicationFactor: 3,
    timeoutMs: 2000,
    waitForReplicasMs,
    defaultWrite: 'all',
    defaultRead: 1,
    maxScanLimit: 1000,
    maxScanPageBytes: 1 << 20,
    injectedDelayMs: () => 0,
    onReadRepair: () => {},
    onQuorumFailure: () => {},
    onBackgroundError: () => {},
  }
  return { coordinator: new Coordinator(options), sent }
}

t.test('a write waits for W replicas to be alive, then goes out', async t => {
  const clock = new FakeClock(1_000)
  const states = new Map<NodeId, ReplicaMember['state']>([[B, 'alive'], [C, 'suspect']])
  const { coordinator: c, sent } = coordinator(clock, states, 5000)
  let done = false
  const write = c.put('k', Buffer.from('v'), {}).then((result) => { done = true; return result })
  await clock.advance(1000)
  t.notOk(done, 'W=all: waiting while a replica is suspect')
  t.same(sent, [], 'nothing was sent meanwhile')
  states.set(C, 'alive')
  await clock.advance(100)
  t.equal((await write).acks, 3)
  t.ok(done)
})

t.test('past waitForReplicasMs the write is refused with 503 and nothing is written', async t => {
  const clock = new FakeClock(1_000)
  const states = new Map<NodeId, ReplicaMember['state']>([[B, 'dead'], [C, 'dead']])
  const { coordinator: c, sent } = coordinator(clock, states, 3000)
  let settled = false
  const write = c.put('k', Buffer.from('v'), { w: 'quorum' }).catch((error: unknown) => error).finally(() => { settled = true })
  for (let steps = 0; steps < 100 && !settled; steps++) await clock.advance(100)
  t.ok(clock.nowMs() - 1_000 >= 3000, 'refused no sooner than waitForReplicasMs')
  const error = await write as HearsayError
  t.equal(error.status, 503)
  t.match(error.message, /only 1 of the 2 replicas this write needs are alive, still after replication.waitForReplicasMs \(3000 ms\)/)
  t.match(error.details, { outcome: 'refused', needed: 2, alive: 1 })
  t.same(sent, [])
})

t.test('waitForReplicasMs 0 keeps today\'s behaviour: no wait', async t => {
  const clock = new FakeClock(1_000)
  const states = new Map<NodeId, ReplicaMember['state']>([[B, 'alive'], [C, 'dead']])
  const { coordinator: c, sent } = coordinator(clock, states, 0)
  const result = await c.put('k', Buffer.from('v'), { w: 'quorum' })
  t.equal(result.acks >= 2, true)
  t.ok(sent.length >= 1, 'sent at once')
})
