import t from 'tap'
import type { NodeId, Version } from '../../lib/clock/version.js'
import { createRandom, type Random } from '../../lib/runtime/random.js'
import { loadRecordDigester } from '../../lib/merkle/digest.js'
import { bucketOf, childIndices, DEPTH, descend, descent, differingLeaves, FANOUT, LEAF_COUNT, levelWidth, MerkleTree } from '../../lib/merkle/tree.js'

const digester = await loadRecordDigester()
const NODES = ['00000000000000a1', '00000000000000b2', '00000000000000c3'] as NodeId[]
const SEEDS = [1, 42, 20240601]

function randomVersion(random: Random): Version {
  return { hlc: 1_700_000_000_000_000 + random.int(1_000_000_000), node: NODES[random.int(NODES.length)] as NodeId }
}

function build(records: ReadonlyMap<string, Version>, order: readonly string[] = [...records.keys()]): MerkleTree {
  const tree = new MerkleTree(digester)
  for (const key of order) tree.apply(key, undefined, records.get(key))
  return tree
}

function allLevels(tree: MerkleTree): bigint[][] {
  return Array.from({ length: DEPTH + 1 }, (_, depth) => tree.level(depth))
}

function shuffled<T>(items: readonly T[], random: Random): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.int(i + 1)
    ;[copy[i], copy[j]] = [copy[j] as T, copy[i] as T]
  }
  return copy
}

function randomRecords(count: number, random: Random): Map<string, Version> {
  const records = new Map<string, Version>()
  for (let i = 0; i < count; i++) records.set(`key-${i}-${random.int(1e9)}`, randomVersion(random))
  return records
}

t.test('shape: fan-out 16, depth 3, 4096 leaves; every inner node has FANOUT children', async t => {
  t.equal(LEAF_COUNT, FANOUT ** DEPTH)
  t.equal(levelWidth(0), 1)
  t.equal(levelWidth(DEPTH), LEAF_COUNT)
  t.same(childIndices(1, [2]), Array.from({ length: FANOUT }, (_, i) => 2 * FANOUT + i))
  t.equal(bucketOf(0n), 0)
  t.equal(bucketOf((1n << 64n) - 1n), LEAF_COUNT - 1)
})

t.test('buckets come from the top bits, so keys of one partition (same low bits) still spread', async t => {
  const buckets = new Set<number>()
  let inPartition = 0
  for (let i = 0; inPartition < 2000 && i < 1_000_000; i++) {
    const keyHash = digester.keyHash(`k${i}`)
    if (keyHash % 256n !== 7n) continue
    inPartition++
    buckets.add(bucketOf(keyHash))
  }
  t.equal(inPartition, 2000)
  t.ok(buckets.size > 1000, `2000 keys of partition 7 land in ${buckets.size} distinct buckets`)
})

t.test('random puts, overwrites, deletes and purges applied incrementally equal a rebuild from the final records', async t => {
  for (const seed of SEEDS) {
    const random = createRandom(seed)
    const held = new Map<string, Version>()
    const tree = new MerkleTree(digester)
    const keys = Array.from({ length: 1500 }, (_, i) => `user:${i}`)
    for (let op = 0; op < 6000; op++) {
      const key = keys[random.int(keys.length)] as string
      const previous = held.get(key)
      // A delete is a new version (a tombstone); a purge (tombstone GC or expiry) removes the record.
      const next = random.chance(0.1) ? undefined : randomVersion(random)
      tree.apply(key, previous, next)
      if (next === undefined) held.delete(key)
      else held.set(key, next)
    }
    t.ok(held.size > 500, `seed ${seed}: the final set is not trivial (${held.size} records)`)
    t.same(allLevels(tree), allLevels(build(held)), `seed ${seed}: incremental tree equals the rebuilt one at every level`)
    t.same(descend(tree, build(held)), [], `seed ${seed}: no leaf differs`)
  }
})

t.test('per-write updates (32-bit words) and the rebuild\'s deltas (BigInt) build the same tree', async t => {
  const random = createRandom(11)
  const records = randomRecords(2000, random)
  const incremental = new MerkleTree(digester)
  const rebuilt = new MerkleTree(digester)
  for (const [key, version] of records) {
    // An overwrite first, so the word path XORs a previous version out as well as one in.
    const older = { hlc: version.hlc - 1, node: version.node }
    incremental.apply(key, undefined, older)
    incremental.apply(key, older, version)
    rebuilt.applyDelta(bucketOf(digester.keyHash(key)), digester.recordHash(key, version))
  }
  t.not(rebuilt.root(), 0n)
  t.same(allLevels(incremental), allLevels(rebuilt), 'every node agrees, high and low halves alike')
})

t.test('removing every record brings the tree back to all zeros', async t => {
  const random = createRandom(7)
  const records = randomRecords(300, random)
  const tree = build(records)
  t.not(tree.root(), 0n)
  for (const [key, version] of records) tree.apply(key, version, undefined)
  t.ok(allLevels(tree).every(level => level.every(digest => digest === 0n)), 'seed 7: every node is zero')
})

t.test('clear forgets every record, ready for a rebuild from the store', async t => {
  const records = randomRecords(300, createRandom(8))
  const tree = build(records)
  tree.clear()
  t.equal(tree.root(), 0n)
  for (const [key, version] of records) tree.apply(key, undefined, version)
  t.same(allLevels(tree), allLevels(build(records)), 'seed 8: rebuilt tree equals a fresh one')
})

t.test('the order records are applied in does not matter', async t => {
  for (const seed of SEEDS) {
    const random = createRandom(seed)
    const records = randomRecords(2000, random)
    const forward = build(records)
    const mixed = build(records, shuffled([...records.keys()], random))
    t.same(allLevels(mixed), allLevels(forward), `seed ${seed}: same digests at every level`)
  }
})

t.test('identical record sets give equal roots and the descent stops at the root', async t => {
  const records = randomRecords(1000, createRandom(3))
  const steps = descent(build(records))
  const first = steps.next([])
  t.same(first.value, { depth: 0, indices: [0] })
  const end = steps.next([build(records).root()])
  t.same(end, { done: true, value: [] }, 'seed 3: no further request after equal roots')
})

t.test('two sets differing in exactly k keys differ in exactly those keys\' leaves', async t => {
  for (const seed of SEEDS) {
    for (const k of [1, 5, 40, 700]) {
      const random = createRandom(seed * 1000 + k)
      const base = randomRecords(3000, random)
      const other = new Map(base)
      const changed = shuffled([...base.keys()], random).slice(0, k)
      for (const [i, key] of changed.entries()) {
        // Three kinds of difference: newer version, key missing on one side, key only on one side.
        if (i % 3 === 0) other.set(key, randomVersion(random))
        else if (i % 3 === 1) other.delete(key)
        else base.delete(key)
      }
      const expected = [...new Set(changed.map(key => bucketOf(digester.keyHash(key))))].sort((a, b) => a - b)
      const found = descend(build(base), build(other))
      t.same(found, expected, `seed ${seed}, k ${k}: differing leaves are exactly the changed keys' buckets`)
      t.same(descend(build(other), build(base)), expected, `seed ${seed}, k ${k}: symmetric`)
    }
  }
})

t.test('the descent asks only for children of differing nodes', async t => {
  const records = randomRecords(3000, createRandom(11))
  const other = new Map(records)
  const key = [...records.keys()][17] as string
  other.delete(key)
  const local = build(records)
  const remote = build(other)
  const asked: number[] = []
  const leaves = await differingLeaves(local, async (depth, indices) => {
    asked.push(indices.length)
    return remote.nodes(depth, indices)
  })
  t.same(leaves, [bucketOf(digester.keyHash(key))])
  t.same(asked, [1, FANOUT, FANOUT, FANOUT], 'seed 11: one root, then one node\'s children per level')
})

t.test('a peer\'s request for nodes and a peer\'s answer are validated', async t => {
  const tree = build(randomRecords(10, createRandom(5)))
  t.throws(() => tree.nodes(DEPTH + 1, [0]), RangeError)
  t.throws(() => tree.nodes(-1, [0]), RangeError)
  t.throws(() => tree.nodes(1, [FANOUT]), RangeError)
  t.throws(() => tree.nodes(1, [0.5]), RangeError)
  t.throws(() => tree.nodes(0, [0, 0]), RangeError, 'more indices than the level has')
  t.throws(() => tree.level(4), RangeError)
  t.throws(() => tree.leaf(LEAF_COUNT), RangeError)
  t.throws(() => childIndices(DEPTH, [0]), RangeError, 'leaves have no children')

  const wrongCount = descent(tree)
  wrongCount.next([])
  t.throws(() => wrongCount.next([1n, 2n]), RangeError)
  const outOfRange = descent(tree)
  outOfRange.next([])
  t.throws(() => outOfRange.next([1n << 64n]), RangeError)
  const notBigint = descent(tree)
  notBigint.next([])
  t.throws(() => notBigint.next([7 as unknown as bigint]), RangeError)
})

t.test('salted truncated digests: a peer projecting its digests and a descent projecting its own agree', async t => {
  const { projectDigests, saltedProjection } = await import('../../lib/merkle/tree.js')
  const digests = build(randomRecords(200, createRandom(3))).level(2)
  t.same(projectDigests(digests, 99, 8), digests, 'width 8 is the digest itself')
  for (const width of [2, 4] as const) {
    const projected = projectDigests(digests, 12345, width)
    t.ok(projected.every((value) => value >= 0n && value < 1n << BigInt(8 * width)), `width ${width}: fits ${width} bytes`)
    const { projection } = saltedProjection(12345, () => width)
    t.same(digests.map((digest) => projection(2, digest)), projected, `width ${width}: both sides compute the same values`)
    t.notSame(projectDigests(digests, 54321, width), projected, `width ${width}: another salt gives other values`)
  }
})

t.test('a descent on 2-byte leaf digests finds only real differences, and three salts find them all', async t => {
  const { saltedProjection, projectDigests } = await import('../../lib/merkle/tree.js')
  for (const seed of SEEDS) {
    const random = createRandom(seed)
    const base = randomRecords(20_000, random)
    const other = new Map(base)
    const changed = shuffled([...base.keys()], random).slice(0, 2000)
    for (const key of changed) other.set(key, randomVersion(random))
    const truth = descend(build(base), build(other))
    const local = build(base)
    const remote = build(other)
    const found = new Set<number>()
    for (const salt of [seed, seed + 1, seed + 2]) {
      const widthAt = (depth: number): 2 | 4 | 8 => ([8, 4, 4, 2] as const)[depth] ?? 8
      const { projection } = saltedProjection(salt, widthAt)
      const leaves = await differingLeaves(local, async (depth, indices) => projectDigests(remote.nodes(depth, indices), salt, widthAt(depth)), projection)
      t.ok(leaves.every((leaf) => truth.includes(leaf)), `seed ${seed}, salt ${salt}: no leaf reported that does not differ`)
      for (const leaf of leaves) found.add(leaf)
    }
    t.same([...found].sort((a, b) => a - b), truth, `seed ${seed}: the union over three salts is every differing leaf`)
  }
})
