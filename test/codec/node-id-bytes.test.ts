import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { NODE_ID_BYTES, nodeIdAt, nodeIdBytes } from '../../lib/codec/node-id-bytes.js'

t.test('a node id goes to its 8 bytes and back, at any offset, for ids that differ in either half', async t => {
  const ids = ['0123456789abcdef', '0123456789abcdee', '1123456789abcdef', 'ffffffffffffffff', '0000000000000000'] as NodeId[]
  const bytes = Buffer.concat([Buffer.from([7]), ...ids.map(nodeIdBytes)])
  t.equal(nodeIdBytes(ids[0]!).length, NODE_ID_BYTES)
  t.strictSame(ids.map((_, i) => nodeIdAt(bytes, 1 + i * NODE_ID_BYTES)), ids)
  t.strictSame(ids.map((_, i) => nodeIdAt(bytes, 1 + i * NODE_ID_BYTES)), ids, 'again, from the caches')
})

t.test('a string that is no node id is refused', async t => {
  t.throws(() => nodeIdBytes('0123456789ABCDEF' as NodeId), TypeError)
  t.throws(() => nodeIdBytes('0123' as NodeId), TypeError)
})
