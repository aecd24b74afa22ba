import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { RemovalRepairs } from '../../lib/lifecycle/removal-repair.js'

const SELF = '0000000000000001' as NodeId
const B = '000000000000000b' as NodeId
const C = '000000000000000c' as NodeId
const GONE = '00000000000000dd' as NodeId

t.test('a gained partition is done once a session with each other replica succeeded', async t => {
  const replicas = new Map<number, NodeId[]>([[3, [SELF, B, C]], [7, [B, SELF, C]]])
  const repairs = new RemovalRepairs({ localId: SELF, replicasOf: (p) => replicas.get(p) ?? [] })
  repairs.start(GONE, [3, 7])
  t.strictSame(repairs.progress(), [{ id: GONE, gained: 2, pending: 2, keysMoved: 0, bytesMoved: 0 }])
  t.equal(repairs.done, false)
  const alive = new Set([B, C])
  const plan = repairs.plan((id) => alive.has(id))
  t.strictSame(plan, [{ id: B, partitions: [3, 7] }, { id: C, partitions: [3, 7] }], 'every other replica, every gained partition')
  repairs.record(plan, [{ id: B, ok: true, agreed: [3], moved: 10, bytesMoved: 640 }, { id: C, ok: false, agreed: [], moved: 0, bytesMoved: 0, error: 'timed out' }])
  t.strictSame(repairs.progress(), [{ id: GONE, gained: 2, pending: 2, keysMoved: 10, bytesMoved: 640 }], 'C still owed')
  t.strictSame(repairs.plan((id) => alive.has(id)), [{ id: C, partitions: [3, 7] }])
  alive.delete(C)
  t.strictSame(repairs.plan((id) => alive.has(id)), [], 'no session with a member that is down')
  alive.add(C)
  repairs.record([{ id: C, partitions: [3, 7] }], [{ id: C, ok: true, agreed: [3, 7], moved: 5, bytesMoved: 320 }])
  t.strictSame(repairs.progress(), [{ id: GONE, gained: 2, pending: 0, keysMoved: 15, bytesMoved: 960 }])
  t.equal(repairs.done, true)
})

t.test('a partition this node no longer replicates is not owed; a removal with nothing gained is done at once', async t => {
  const replicas = new Map<number, NodeId[]>([[1, [SELF, B, C]]])
  const repairs = new RemovalRepairs({ localId: SELF, replicasOf: (p) => replicas.get(p) ?? [] })
  repairs.start(GONE, [1])
  repairs.start(B, [])
  replicas.set(1, [B, C, '000000000000000e' as NodeId])
  t.strictSame(repairs.progress(), [{ id: GONE, gained: 1, pending: 0, keysMoved: 0, bytesMoved: 0 }, { id: B, gained: 0, pending: 0, keysMoved: 0, bytesMoved: 0 }])
  t.equal(repairs.done, true)
})
