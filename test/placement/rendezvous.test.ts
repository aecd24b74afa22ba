import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { loadHasher, type Hasher } from '../../lib/placement/hash.js'
import { partitionOf } from '../../lib/placement/partitions.js'
import { ownedPartitions, preferenceList, replicasFor, type PlacementMember } from '../../lib/placement/rendezvous.js'
import { membersOf, seededIds } from './fixtures/ids.js'

const hasher = await loadHasher()
const options = { partitionCount: 256, replicationFactor: 3 }

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const copy = [...items]
  let state = seed
  for (let i = copy.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31
    const j = state % (i + 1)
    const a = copy[i] as T
    copy[i] = copy[j] as T
    copy[j] = a
  }
  return copy
}

t.test('the same members give the same preference lists, whatever order they are listed in', async t => {
  const members = membersOf(seededIds(1, 7))
  for (let partition = 0; partition < options.partitionCount; partition++) {
    const expected = preferenceList(hasher, partition, members)
    t.equal(expected.length, 7)
    for (const seed of [3, 11]) {
      const same = preferenceList(hasher, partition, shuffled(members, seed + partition))
      if (!t.strictSame(same, expected, `partition ${partition}`)) break
    }
  }
})

t.test('the list is ordered by rank, highest first', async t => {
  const members = membersOf(seededIds(2, 6))
  const list = preferenceList(hasher, 9, members)
  for (let i = 1; i < list.length; i++) {
    t.ok(hasher.rank(9, list[i - 1] as NodeId) > hasher.rank(9, list[i] as NodeId), `position ${i}`)
  }
})

t.test('equal ranks are ordered by node id, so the order never depends on input order', async t => {
  const flat: Hasher = { keyHash: () => 0n, rank: () => 7n }
  const ids = seededIds(3, 5)
  const sorted = [...ids].sort()
  t.strictSame(preferenceList(flat, 0, membersOf(ids)), sorted)
  t.strictSame(preferenceList(flat, 0, membersOf([...ids].reverse())), sorted)
})

t.test('members that left are excluded; suspect and dead members keep their place', async t => {
  const ids = seededIds(4, 6)
  const allAlive = membersOf(ids)
  const [a, b, c] = ids as [NodeId, NodeId, NodeId]
  const mixed: PlacementMember[] = allAlive.map(member =>
    member.id === a ? { id: a, state: 'suspect' } : member.id === b ? { id: b, state: 'dead' } : member.id === c ? { id: c, state: 'left' } : member)
  for (let partition = 0; partition < 32; partition++) {
    const expected = preferenceList(hasher, partition, allAlive).filter(id => id !== c)
    t.strictSame(preferenceList(hasher, partition, mixed), expected, `partition ${partition}`)
  }
  const replicaSets = Array.from({ length: options.partitionCount }, (_, p) => preferenceList(hasher, p, mixed).slice(0, 3))
  t.ok(replicaSets.some(set => set.includes(a)), 'a suspect member is still a replica somewhere')
  t.ok(replicaSets.some(set => set.includes(b)), 'a dead member is still a replica somewhere')
  t.notOk(replicaSets.some(set => set.includes(c)), 'a member that left replicates nothing')
  t.strictSame(ownedPartitions(hasher, c, mixed, options), [])
})

t.test('replicasFor gives the key partition and the top N of its preference list', async t => {
  const members = membersOf(seededIds(5, 5))
  for (const key of ['user:1', 'user:2', 'order/2024/07', '']) {
    const placement = replicasFor(hasher, key, members, options)
    t.equal(placement.partition, partitionOf(hasher, key, options.partitionCount))
    t.strictSame(placement.replicas, preferenceList(hasher, placement.partition, members).slice(0, 3))
    t.equal(new Set(placement.replicas).size, 3, 'three distinct replicas')
  }
})

t.test('with N at or above the cluster size every eligible member is a replica', async t => {
  const ids = seededIds(6, 3)
  const members = [...membersOf(ids), { id: seededIds(60, 1)[0] as NodeId, state: 'left' as const }]
  for (const replicationFactor of [3, 5]) {
    const placement = replicasFor(hasher, 'k', members, { partitionCount: 256, replicationFactor })
    t.strictSame([...placement.replicas].sort(), [...ids].sort(), `N=${replicationFactor}`)
    for (const id of ids) t.equal(ownedPartitions(hasher, id, members, { partitionCount: 256, replicationFactor }).length, 256)
  }
  t.strictSame(replicasFor(hasher, 'k', [], options).replicas, [], 'no members, no replicas')
})

t.test('ownedPartitions lists exactly the partitions whose top N include the node', async t => {
  const members = membersOf(seededIds(7, 5))
  let total = 0
  for (const { id } of members) {
    const owned = ownedPartitions(hasher, id, members, options)
    total += owned.length
    for (let partition = 0; partition < options.partitionCount; partition++) {
      const isReplica = preferenceList(hasher, partition, members).slice(0, 3).includes(id)
      if (!t.equal(owned.includes(partition), isReplica, `${id} partition ${partition}`)) break
    }
  }
  t.equal(total, options.partitionCount * options.replicationFactor, 'every partition has exactly N owners')
})

t.test('a member listed twice and nonsensical options are refused', async t => {
  const [id] = seededIds(8, 1) as [NodeId]
  t.throws(() => preferenceList(hasher, 0, [{ id, state: 'alive' }, { id, state: 'suspect' }]), TypeError)
  t.doesNotThrow(() => preferenceList(hasher, 0, [{ id, state: 'left' }, { id, state: 'alive' }]), 'a left entry does not count')
  const members = membersOf([id])
  for (const replicationFactor of [0, -1, 1.5]) {
    t.throws(() => replicasFor(hasher, 'k', members, { partitionCount: 256, replicationFactor }), RangeError)
  }
  t.throws(() => ownedPartitions(hasher, id, members, { partitionCount: 0, replicationFactor: 1 }), RangeError)
})
