import t from 'tap'
import { frameRegistry } from '../../lib/codec/frames.js'
import { LIFECYCLE_GOSSIP, LIFECYCLE_PROGRESS_REPLY, validateLifecycleGossip, validateLifecycleProgressReply } from '../../lib/lifecycle/messages.js'

const removed = { kind: 'removed', id: '00000000000000a1', name: 'node-1', by: '00000000000000b2', byName: 'node-2', atMs: 1700000000000 }
const leaving = { kind: 'leaving', id: '00000000000000c3', name: 'node-3', startedAtMs: 1700000000000, active: true }

t.test('lifecycle frames take their codes from 0x6a and validate their bodies', async t => {
  t.equal(frameRegistry.named(LIFECYCLE_GOSSIP).code, 0x6a)
  t.equal(frameRegistry.named(LIFECYCLE_GOSSIP).kind, 'oneway')
  t.equal(frameRegistry.named(LIFECYCLE_PROGRESS_REPLY).code, 0x6c)
  t.strictSame(validateLifecycleGossip({ records: [removed, leaving], reply: true }), { records: [removed, leaving], reply: true })
  t.strictSame(validateLifecycleProgressReply({ repairs: [{ id: removed.id, gained: 3, pending: 1, keysMoved: 40, bytesMoved: 4096 }] }).repairs[0]?.pending, 1)
})

t.test('a malformed lifecycle body is refused with the field at fault', async t => {
  t.throws(() => validateLifecycleGossip({ records: [{ ...removed, id: 'not-an-id' }], reply: false }), /records\[0\]\.id is not a node id/)
  t.throws(() => validateLifecycleGossip({ records: [{ ...removed, kind: 'evicted' }], reply: false }), /kind/)
  t.throws(() => validateLifecycleGossip({ records: [{ ...leaving, active: 'yes' }], reply: false }), /active/)
  t.throws(() => validateLifecycleGossip({ records: [], reply: 1 }), /reply/)
  t.throws(() => validateLifecycleGossip({ records: new Array(1025).fill(leaving), reply: false }), /records/)
  t.throws(() => validateLifecycleProgressReply({ repairs: [{ id: removed.id, gained: -1, pending: 0, keysMoved: 0, bytesMoved: 0 }] }), /gained/)
})
