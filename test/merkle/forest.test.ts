import t from 'tap'
import type { NodeId, Version } from '../../lib/clock/version.js'
import { createRandom } from '../../lib/runtime/random.js'
import { loadRecordDigester } from '../../lib/merkle/digest.js'
import { MerkleForest } from '../../lib/merkle/forest.js'

const digester = await loadRecordDigester()
const PARTITIONS = 16
const node = '00000000000000a1' as NodeId

function partitionOf(key: string): number {
  return Number(digester.keyHash(key) % BigInt(PARTITIONS))
}

t.test('the store digest is the XOR of every record hash, whatever the order', async t => {
  const seed = 9
  const random = createRandom(seed)
  const records = Array.from({ length: 1000 }, (_, i): [string, Version] => [`k${i}`, { hlc: 1 + random.int(1e9), node }])
  const forward = new MerkleForest(digester)
  const backward = new MerkleForest(digester)
  let expected = 0n
  for (const [key, version] of records) {
    forward.apply(partitionOf(key), key, undefined, version)
    expected ^= digester.recordHash(key, version)
  }
  for (const [key, version] of [...records].reverse()) backward.apply(partitionOf(key), key, undefined, version)
  t.equal(forward.digest(), expected, `seed ${seed}`)
  t.equal(backward.digest(), expected, `seed ${seed}`)
  t.same(forward.partitions(), Array.from({ length: PARTITIONS }, (_, i) => i))
})

t.test('one changed record changes the digest and only its partition\'s root', async t => {
  const forest = new MerkleForest(digester)
  for (let i = 0; i < 200; i++) forest.apply(partitionOf(`k${i}`), `k${i}`, undefined, { hlc: i + 1, node })
  const before = forest.digest()
  const roots = forest.partitions().map(p => forest.tree(p)?.root())
  const changed = partitionOf('k5')
  forest.apply(changed, 'k5', { hlc: 6, node }, { hlc: 1000, node })
  t.not(forest.digest(), before)
  forest.partitions().forEach((p, i) => {
    if (p === changed) t.not(forest.tree(p)?.root(), roots[i])
    else t.equal(forest.tree(p)?.root(), roots[i], `partition ${p} unchanged`)
  })
  forest.apply(changed, 'k5', { hlc: 1000, node }, { hlc: 6, node })
  t.equal(forest.digest(), before, 'undoing the change restores the digest')
})

t.test('a dropped partition no longer counts in the digest', async t => {
  const forest = new MerkleForest(digester)
  forest.apply(1, 'a', undefined, { hlc: 1, node })
  forest.apply(2, 'b', undefined, { hlc: 2, node })
  forest.drop(2)
  t.same(forest.partitions(), [1])
  t.equal(forest.tree(2), undefined)
  t.equal(forest.digest(), digester.recordHash('a', { hlc: 1, node }))
  t.throws(() => forest.apply(-1, 'a', undefined, { hlc: 1, node }), RangeError)
})

t.test('a record added from its segment-index bytes lands where apply() puts it', async t => {
  const { encodeSegmentVersion } = await import('../../lib/store/segment-index.js')
  const { bucketOf } = await import('../../lib/merkle/tree.js')
  const { segmentOf } = await import('../../lib/merkle/segment.js')
  const fromRecords = new MerkleForest(digester)
  const fromBytes = new MerkleForest(digester)
  const bySegment = new MerkleForest(digester)
  for (let i = 0; i < 500; i++) {
    const key = `ключ/${i}/🔑`
    const version: Version = { hlc: 1_795_601_425_041_000 + i, node }
    const segment = segmentOf(partitionOf(key), bucketOf(digester.keyHash(key)))
    fromRecords.apply(partitionOf(key), key, undefined, version)
    fromBytes.addRaw(segment, Buffer.from(key, 'utf8'), encodeSegmentVersion(version))
    bySegment.applyInSegment(segment, key, undefined, version)
  }
  t.equal(fromBytes.digest(), fromRecords.digest(), 'same store digest')
  for (const partition of fromRecords.partitions()) {
    t.same(fromBytes.tree(partition)?.level(3), fromRecords.tree(partition)?.level(3), `partition ${partition}: same leaves`)
    t.same(bySegment.tree(partition)?.level(3), fromRecords.tree(partition)?.level(3), `partition ${partition}: same leaves through applyInSegment`)
  }
  t.throws(() => digester.recordHashBytes(Buffer.from('k'), new Uint8Array(15)), RangeError, 'a version must be 16 bytes')
})
