import t from 'tap'
import xxhash from 'xxhash-wasm'
import type { NodeId, Version } from '../../lib/clock/version.js'
import { loadRecordDigester } from '../../lib/merkle/digest.js'
import { loadHasher } from '../../lib/placement/hash.js'

const digester = await loadRecordDigester()
const { h64Raw } = await xxhash()

t.test('recordHash is xxh64 of UTF-8 key ‖ hlc as uint64 big-endian ‖ node id bytes', async t => {
  const version: Version = { hlc: 0x0001_0203_0405_0607, node: '0123456789abcdef' as NodeId }
  const key = 'clé/🙂'
  const bytes = Uint8Array.from([
    ...new TextEncoder().encode(key),
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
  ])
  t.equal(digester.recordHash(key, version), h64Raw(bytes, 0n))
  // Pinned: the encoding is protocol; an accidental change must fail loudly.
  t.equal(digester.recordHash('k', { hlc: 1, node: '0000000000000001' as NodeId }), h64Raw(Uint8Array.from([0x6b, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]), 0n))
})

t.test('keyHash is the placement key hash, so a caller may pass one for the other', async t => {
  const hasher = await loadHasher()
  for (const key of ['', 'user:42', 'clé/日本/🙂']) t.equal(digester.keyHash(key), hasher.keyHash(key), key)
})

t.test('keys longer than the scratch buffer hash like short ones do', async t => {
  const version: Version = { hlc: 123_456_789_000, node: 'ffffffffffffffff' as NodeId }
  const key = '日'.repeat(5000)
  const bytes = new Uint8Array([...new TextEncoder().encode(key), ...new Uint8Array(16)])
  new DataView(bytes.buffer).setBigUint64(bytes.length - 16, 123_456_789_000n, false)
  new DataView(bytes.buffer).setBigUint64(bytes.length - 8, 0xffff_ffff_ffff_ffffn, false)
  t.equal(digester.recordHash(key, version), h64Raw(bytes, 0n))
  t.equal(digester.recordHash('short', version), digester.recordHash('short', version), 'a smaller key after a larger one is unaffected')
})

t.test('a different version or key gives a different hash', async t => {
  const node = '0123456789abcdef' as NodeId
  const base = digester.recordHash('a', { hlc: 10, node })
  t.not(digester.recordHash('a', { hlc: 11, node }), base)
  t.not(digester.recordHash('a', { hlc: 10, node: '0123456789abcdee' as NodeId }), base)
  t.not(digester.recordHash('b', { hlc: 10, node }), base)
})

t.test('a malformed version is refused rather than hashed as zeros', async t => {
  t.throws(() => digester.recordHash('a', { hlc: 1, node: 'not-a-node-id' as NodeId }), TypeError)
  t.throws(() => digester.recordHash('a', { hlc: -1, node: '0123456789abcdef' as NodeId }), RangeError)
  t.throws(() => digester.recordHash('a', { hlc: 1.5, node: '0123456789abcdef' as NodeId }), RangeError)
})

t.test('node ids remembered for later hashes: the same bytes however many ids came before, and a bad id still refused', async t => {
  const nodeId = (i: number): NodeId => i.toString(16).padStart(16, '0') as NodeId
  const expected = (i: number): bigint => {
    const bytes = new Uint8Array(1 + 16)
    bytes[0] = 0x6b
    const view = new DataView(bytes.buffer)
    view.setBigUint64(1, 7n, false)
    view.setBigUint64(9, BigInt(i), false)
    return h64Raw(bytes, 0n)
  }
  // More distinct ids than the digester remembers: it forgets and parses again, never mixes them up.
  const wrong = Array.from({ length: 3000 }, (_, i) => i).filter((i) => digester.recordHash('k', { hlc: 7, node: nodeId(i) }) !== expected(i))
  t.same(wrong, [], '3000 distinct ids each hash as their own bytes')
  t.equal(digester.recordHash('k', { hlc: 7, node: nodeId(5) }), expected(5), 'an id seen long ago')
  t.throws(() => digester.recordHash('k', { hlc: 7, node: '0123456789ABCDEF' as NodeId }), TypeError, 'upper case is still not a node id')
})
