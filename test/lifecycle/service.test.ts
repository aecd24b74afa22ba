import t from 'tap'
import { pino } from 'pino'
import type { NodeId } from '../../lib/clock/version.js'
import { ConflictError, NotFoundError } from '../../lib/errors.js'
import { LIFECYCLE_GOSSIP, type LifecycleGossipBody, type LifecycleRecord, type RemovalRecord } from '../../lib/lifecycle/messages.js'
import { LifecycleService } from '../../lib/lifecycle/service.js'
import { validateStoredRepairs, type StoredRepair } from '../../lib/lifecycle/removal-repair.js'
import type { Member } from '../../lib/membership/member-table.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import { createRandom } from '../../lib/runtime/random.js'
import type { PeerMessage } from '../../lib/transport/transport.js'

const id = (n: number): NodeId => n.toString(16).padStart(16, '0') as NodeId
const member = (n: number, state: Member['state']): Member => ({ id: id(n), name: `node-${n}`, peer: `127.0.0.1:${7000 + n}`, api: `127.0.0.1:${8000 + n}`, incarnation: 1, state, stateChangedAtMs: 0 })

interface Fixture {
  readonly service: LifecycleService
  readonly sent: { peer: string; message: PeerMessage }[]
  readonly persisted: LifecycleRecord[][]
  readonly persistedRepairs: StoredRepair[][]
  readonly removedSelf: RemovalRecord[]
  members: Member[]
  refreshes: number
  rebalances: number
}

interface Placement {
  owned: number[]
  /** What this node owns once placement is recomputed (a removal adds partitions). */
  readonly ownedAfterRefresh: number[]
  readonly replicas: Map<number, NodeId[]>
  synced: { id: NodeId; partitions: readonly number[] }[]
}

function fixture(members: Member[], replicationFactor = 2, initial: LifecycleRecord[] = [], initialRepairs: StoredRepair[] = [], placement?: Placement): Fixture {
  const f: Fixture = { service: undefined as unknown as LifecycleService, sent: [], persisted: [], persistedRepairs: [], removedSelf: [], members, refreshes: 0, rebalances: 0 }
  ;(f as { service: LifecycleService }).service = new LifecycleService({
    localId: id(1), localName: 'node-1', clock: new FakeClock(5000), random: createRandom(1), log: pino({ level: 'silent' }),
    replicationFactor, initial,
    persist: async (records) => { f.persisted.push([...records()]) },
    initialRepairs,
    persistRepairs: async (repairs) => { f.persistedRepairs.push([...repairs()]) },
    persistDecommissioned: async () => undefined,
    members: () => f.members,
    send: (peer, message) => { f.sent.push({ peer, message }) },
    request: async () => { throw new Error('no peers in this test') },
    requestTimeoutMs: 100, gossipIntervalMs: 1000, retryDelayMs: 1000,
    ownedPartitions: () => placement?.owned ?? [], replicasOf: (p) => placement?.replicas.get(p) ?? [], pendingReplicas: () => [],
    placementMembers: () => f.members.filter((m) => m.state !== 'left').map((m) => m.id),
    refreshPlacement: (rebalance) => {
      f.refreshes++
      if (rebalance) f.rebalances++
      if (placement !== undefined) placement.owned = placement.ownedAfterRefresh
    },
    sync: async (requests) => {
      placement?.synced.push(...requests)
      return requests.map(({ id }) => ({ id, ok: false, agreed: [], moved: 0, bytesMoved: 0, error: 'held by the test' }))
    },
    hintsPending: () => 0,
    dropHints: async () => 0,
    leave: async () => undefined,
    onRemovedSelf: (record) => { f.removedSelf.push(record) },
  })
  return f
}

t.test('remove takes a dead member out for good, by name or id, and tells every live member', async t => {
  const f = fixture([member(1, 'alive'), member(2, 'alive'), member(3, 'dead'), member(4, 'suspect')])
  const outcome = await f.service.remove('node-3')
  t.match(outcome, { alreadyRemoved: false, removal: { id: id(3), name: 'node-3', by: id(1), byName: 'node-1', atMs: 5000 } })
  t.equal(f.service.isRemoved(id(3)), true)
  t.equal(f.persisted.length, 1, 'persisted before answering')
  t.equal(f.refreshes, 1, 'placement recomputed')
  t.equal(f.rebalances, 0, 'no general rebalance: the repair syncs the gained partitions itself')
  t.strictSame(f.sent.map((s) => s.peer).sort(), ['127.0.0.1:7002', '127.0.0.1:7004'], 'pushed to the alive and suspect members')
  t.equal(f.sent[0]?.message.type, LIFECYCLE_GOSSIP)
  t.match(await f.service.remove(id(3)), { alreadyRemoved: true }, 'removing again answers the record')
  t.match(f.service.status().removed, [{ id: id(3), repair: { gained: 0, pending: 0 } }])
})

t.test('a node restarted mid-repair still owes the partitions it gained before the restart', async t => {
  const members = [member(1, 'alive'), member(2, 'alive'), member(3, 'dead'), member(4, 'alive')]
  const placement = (): Placement => ({ owned: [1], ownedAfterRefresh: [1, 5], replicas: new Map([[1, [id(1), id(2), id(4)]], [5, [id(1), id(2), id(4)]]]), synced: [] })
  const before = placement()
  const first = fixture(members, 3, [], [], before)
  await first.service.remove('node-3')
  await new Promise((resolve) => setImmediate(resolve))
  t.strictSame(first.service.repairProgress(), [{ id: id(3), gained: 1, pending: 1, keysMoved: 0, bytesMoved: 0 }], 'partition 5 gained')
  t.strictSame(before.synced.map((r) => [r.id, r.partitions]), [[id(2), [5]], [id(4), [5]]], 'synced with the other replicas (held failing)')
  const stored = first.persistedRepairs.at(-1)
  t.ok(stored !== undefined, 'the repair was stored')
  await first.service.stop()

  // Restarted: placement already counts partition 5 as this node's own, so nothing is gained anew.
  const after = { ...placement(), owned: [1, 5] }
  const second = fixture(members, 3, first.persisted.at(-1) ?? [], stored ?? [], after)
  t.strictSame(second.service.repairProgress(), [{ id: id(3), gained: 1, pending: 1, keysMoved: 0, bytesMoved: 0 }], 'still owed after the restart')
  second.service.start()
  await new Promise((resolve) => setImmediate(resolve))
  t.strictSame(after.synced.map((r) => [r.id, r.partitions]), [[id(2), [5]], [id(4), [5]]], 'and synced again')
  await second.service.stop()
})

t.test('stored repairs read back as written; malformed ones are refused with a reason', async t => {
  const stored: StoredRepair[] = [{ id: id(3), gained: [2, 5], synced: [[2, [id(4)]], [5, []]], keysMoved: 7, bytesMoved: 700 }]
  t.strictSame(validateStoredRepairs(JSON.parse(JSON.stringify(stored))), stored)
  t.throws(() => validateStoredRepairs([{ ...stored[0], id: 'nope' }]), /removal repairs\[0\]\.id must be a node id/)
  t.throws(() => validateStoredRepairs([{ ...stored[0], gained: [70000] }]), /gained\[0\]/)
  t.throws(() => validateStoredRepairs([{ ...stored[0], synced: [[2]] }]), /must be \[partition, replicas\]/)
  t.throws(() => validateStoredRepairs({}), /removal repairs/)
})

t.test('remove refuses a live member, itself, an unknown one and an ambiguous name', async t => {
  const twin = { ...member(5, 'dead'), name: 'node-3' }
  const f = fixture([member(1, 'alive'), member(2, 'alive'), member(3, 'dead'), member(4, 'suspect'), twin])
  await t.rejects(f.service.remove('node-2'), ConflictError)
  await t.rejects(f.service.remove('node-2'), /node-2 \(0000000000000002\) is alive: hearsay members remove is for dead members/)
  await t.rejects(f.service.remove('node-4'), /is suspect/)
  await t.rejects(f.service.remove(id(1)), /cannot remove itself/)
  await t.rejects(f.service.remove('node-9'), NotFoundError)
  await t.rejects(f.service.remove('node-3'), /2 members are called "node-3": give the id/)
  t.equal(f.persisted.length, 0, 'nothing was recorded')
})

t.test('a node that hears of its own removal reports it once; records it lacks are answered back', async t => {
  const f = fixture([member(1, 'alive'), member(2, 'alive')])
  const removal: RemovalRecord = { kind: 'removed', id: id(1), name: 'node-1', by: id(2), byName: 'node-2', atMs: 10 }
  f.service.receive({ peer: '127.0.0.1:7002' }, { records: [removal], reply: true })
  await new Promise((resolve) => setImmediate(resolve))
  t.strictSame(f.removedSelf, [removal])
  t.equal(f.service.removedSelf?.by, id(2))
  f.service.receive({ peer: '127.0.0.1:7002' }, { records: [removal], reply: true })
  t.equal(f.removedSelf.length, 1, 'once')
  t.equal(f.sent.length, 0, 'nothing to answer: the sender knows everything we do')
  f.service.receive({ peer: '127.0.0.1:7002' }, { records: [], reply: true })
  t.equal(f.sent.length, 1)
  t.strictSame((f.sent[0]?.message.body as LifecycleGossipBody).records, [removal])
})

t.test('a node that starts with its own removal on record knows it before it joins', async t => {
  const f = fixture([member(1, 'alive')], 2, [{ kind: 'removed', id: id(1), name: 'node-1', by: id(2), byName: 'node-2', atMs: 10 }])
  t.equal(f.service.removedSelf?.byName, 'node-2')
})

t.test('decommission is refused when fewer than N live members would remain', async t => {
  const f = fixture([member(1, 'alive'), member(2, 'alive'), member(3, 'dead')], 2)
  await t.rejects(f.service.decommission(), /would leave 1 live members, fewer than replication\.factor 2/)
  t.equal(f.service.leavingIds().size, 0)
  f.members.push(member(4, 'alive'))
  const progress = await f.service.decommission()
  t.equal(progress.phase, 'streaming')
  t.strictSame([...f.service.leavingIds()], [id(1)], 'this node is leaving, as its record says')
  const again = await f.service.decommission()
  t.ok(['streaming', 'draining', 'verifying', 'leaving', 'left'].includes(again.phase), 'a second call answers the progress of the same run')
  // Nothing to stream here (no partitions): it goes straight through to left.
  for (let turn = 0; turn < 20 && !f.service.decommissioned; turn++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(f.service.decommissioned, true)
  t.equal(f.service.decommissionPhase, 'left')
  await f.service.stop()
})
