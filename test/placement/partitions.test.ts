import t from 'tap'
import { loadHasher } from '../../lib/placement/hash.js'
import { partitionOf } from '../../lib/placement/partitions.js'

const hasher = await loadHasher()
const PARTITION_COUNT = 256
const KEY_COUNT = 100_000

t.test('a key always maps to the same partition, within [0, Q)', async t => {
  for (const key of ['', 'a', 'user:1', 'user:2', 'ключ', 'x'.repeat(1000)]) {
    const partition = partitionOf(hasher, key, PARTITION_COUNT)
    t.ok(Number.isInteger(partition) && partition >= 0 && partition < PARTITION_COUNT, `${partition} in range`)
    t.equal(partitionOf(hasher, key, PARTITION_COUNT), partition)
    t.equal(partition, Number(hasher.keyHash(key) % BigInt(PARTITION_COUNT)), 'partition = keyHash mod Q')
  }
  t.equal(partitionOf(hasher, 'anything', 1), 0, 'one partition holds every key')
})

t.test('100k keys spread over 256 partitions with max/mean ≤ 1.3', async t => {
  const counts = new Array<number>(PARTITION_COUNT).fill(0)
  for (let i = 0; i < KEY_COUNT; i++) {
    const partition = partitionOf(hasher, `user:${i}`, PARTITION_COUNT)
    counts[partition] = (counts[partition] ?? 0) + 1
  }
  const mean = KEY_COUNT / PARTITION_COUNT
  const max = Math.max(...counts)
  const min = Math.min(...counts)
  t.comment(`keys per partition: min ${min}, mean ${mean.toFixed(1)}, max ${max}, max/mean ${(max / mean).toFixed(3)}`)
  t.ok(min > 0, 'every partition gets keys')
  t.ok(max / mean <= 1.3, `max/mean ${(max / mean).toFixed(3)} ≤ 1.3`)
})

t.test('a partition count that is not a positive integer up to 2^32 is refused', async t => {
  for (const bad of [0, -1, 2.5, Number.NaN, 2 ** 32 + 1]) {
    t.throws(() => partitionOf(hasher, 'k', bad), RangeError, `Q=${bad}`)
  }
})
