import t from 'tap'
import xxhash from 'xxhash-wasm'
import type { NodeId } from '../../lib/clock/version.js'
import { loadHasher, RANK_INPUT_BYTES } from '../../lib/placement/hash.js'

const hasher = await loadHasher()
const { h64Raw } = await xxhash()

t.test('keyHash is xxh64 of the UTF-8 bytes with seed 0 (published test vectors)', async t => {
  t.equal(hasher.keyHash(''), 0xef46db3751d8e999n)
  t.equal(hasher.keyHash('abc'), 0x44bc2cf5ad770999n)
  const unicodeKey = 'clé/日本/🙂'
  t.equal(hasher.keyHash(unicodeKey), h64Raw(new TextEncoder().encode(unicodeKey), 0n))
})

t.test('rank hashes partition as uint32 big-endian followed by the 8 bytes of the node id', async t => {
  t.equal(RANK_INPUT_BYTES, 12)
  const id = '0123456789abcdef' as NodeId
  const partition = 0x01020304
  const bytes = Uint8Array.from([0x01, 0x02, 0x03, 0x04, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef])
  t.equal(hasher.rank(partition, id), h64Raw(bytes, 0n))
  // Pinned so an accidental change of the encoding — which would move data — fails loudly.
  t.equal(hasher.rank(0, id), 0x436b3df8c57dc87cn)
  t.equal(hasher.rank(255, 'fedcba9876543210' as NodeId), 0x2aef44ffc7f50fa9n)
})

t.test('hashers loaded separately agree, and repeated calls give the same value', async t => {
  const other = await loadHasher()
  const id = 'a1b2c3d4e5f60718' as NodeId
  t.equal(other.keyHash('user:42'), hasher.keyHash('user:42'))
  t.equal(other.rank(17, id), hasher.rank(17, id))
  t.equal(hasher.rank(17, id), hasher.rank(17, id))
  t.not(hasher.rank(17, id), hasher.rank(18, id), 'a different partition ranks differently')
})

t.test('rank refuses a partition outside uint32 and a malformed node id', async t => {
  const id = '0123456789abcdef' as NodeId
  t.throws(() => hasher.rank(-1, id), RangeError)
  t.throws(() => hasher.rank(2 ** 32, id), RangeError)
  t.throws(() => hasher.rank(1.5, id), RangeError)
  t.throws(() => hasher.rank(0, 'XYZ' as NodeId), TypeError)
  t.throws(() => hasher.rank(0, '0123456789ABCDEF' as NodeId), TypeError)
})
