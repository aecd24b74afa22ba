import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { loadHasher } from '../../lib/placement/hash.js'
import { partitionOf } from '../../lib/placement/partitions.js'
import { ownedPartitions, preferenceList, replicasFor } from '../../lib/placement/rendezvous.js'
import { PlacementTable } from '../../lib/placement/table.js'
import { membersOf, seededIds } from './fixtures/ids.js'

const hasher = await loadHasher()
const options = { partitionCount: 256, replicationFactor: 3 }
const LOOKUPS = 200_000

t.test('the table answers exactly what the placement functions compute', async t => {
  const members = membersOf(seededIds(3001, 5))
  const table = new PlacementTable(hasher, options, members)
  t.equal(table.partitionCount, 256)
  t.strictSame(table.members, members.map(m => m.id).sort())
  for (let p = 0; p < options.partitionCount; p++) {
    t.strictSame(table.preferenceList(p), preferenceList(hasher, p, members), `partition ${p} preference list`)
    t.strictSame(table.replicas(p), preferenceList(hasher, p, members).slice(0, 3), `partition ${p} replicas`)
  }
  for (let i = 0; i < 100; i++) {
    const key = `user:${i}`
    t.equal(table.partitionOf(key), partitionOf(hasher, key, 256))
    t.strictSame(table.replicasFor(key), replicasFor(hasher, key, members, options))
  }
  for (const { id } of members) t.strictSame(table.ownedPartitions(id), ownedPartitions(hasher, id, members, options))
})

t.test('state changes among alive, suspect and dead keep the cached lists; joins and leaves replace them', async t => {
  const ids = seededIds(3002, 6)
  const five = membersOf(ids.slice(0, 5))
  const table = new PlacementTable(hasher, options, five)
  const cached = table.replicas(7)
  t.equal(table.update([...five].reverse()), false, 'same members in another order')
  t.equal(table.update(five.map((m, i) => (i === 0 ? { id: m.id, state: 'dead' as const } : m))), false, 'a member died')
  t.equal(table.update(five.map((m, i) => (i === 0 ? { id: m.id, state: 'suspect' as const } : m))), false, 'a member is suspect')
  t.equal(table.replicas(7), cached, 'the very same cached array')

  t.equal(table.update(membersOf(ids)), true, 'a member joined')
  t.strictSame(table.members, [...ids].sort())
  t.strictSame(table.replicas(7), preferenceList(hasher, 7, membersOf(ids)).slice(0, 3))

  const leaver = ids[0] as NodeId
  t.equal(table.update(membersOf(ids).map(m => (m.id === leaver ? { id: leaver, state: 'left' as const } : m))), true, 'a member left')
  t.notOk(table.members.includes(leaver))
  t.strictSame(table.ownedPartitions(leaver), [])
})

t.test('cached lists cannot be changed by a caller', async t => {
  const table = new PlacementTable(hasher, options, membersOf(seededIds(3003, 4)))
  const replicas = table.replicas(0) as NodeId[]
  t.throws(() => replicas.push('0000000000000000' as NodeId), TypeError)
  t.throws(() => { (table.preferenceList(0) as NodeId[])[0] = '0000000000000000' as NodeId }, TypeError)
})

t.test('an empty table places nothing and refuses partitions out of range', async t => {
  const table = new PlacementTable(hasher, options)
  t.strictSame(table.replicasFor('k').replicas, [])
  t.strictSame(table.members, [])
  t.throws(() => table.replicas(256), RangeError)
  t.throws(() => table.replicas(-1), RangeError)
  t.throws(() => table.preferenceList(1.5), RangeError)
  t.throws(() => new PlacementTable(hasher, { partitionCount: 256, replicationFactor: 0 }), RangeError)
})

t.test('a lookup is one key hash and an array index (rate reported, not asserted)', async t => {
  const members = membersOf(seededIds(3004, 5))
  const table = new PlacementTable(hasher, options, members)
  const keys = Array.from({ length: 1000 }, (_, i) => `user:${i}:profile`)
  const perPartition = new Array<number>(options.partitionCount).fill(0)
  const startNs = process.hrtime.bigint()
  for (let i = 0; i < LOOKUPS; i++) {
    const { partition } = table.replicasFor(keys[i % keys.length] as string)
    perPartition[partition] = (perPartition[partition] ?? 0) + 1
  }
  const elapsedNs = Number(process.hrtime.bigint() - startNs)
  t.comment(`${LOOKUPS} lookups in ${(elapsedNs / 1e6).toFixed(1)} ms: ${Math.round(LOOKUPS / (elapsedNs / 1e9))} lookups/s`)
  for (const key of keys.slice(0, 10)) {
    t.strictSame(table.replicasFor(key), replicasFor(hasher, key, members, options), key)
  }
  t.equal(perPartition.reduce((a, b) => a + b, 0), LOOKUPS)
})

t.test('a dead member whose peer address an alive member took over no longer holds partitions', async t => {
  const [a, b, oldC, newC] = seededIds(4242, 4) as [NodeId, NodeId, NodeId, NodeId]
  const table = new PlacementTable(hasher, options, [
    { id: a, state: 'alive', peer: '10.0.0.1:7946' },
    { id: b, state: 'alive', peer: '10.0.0.2:7946' },
    { id: oldC, state: 'dead', peer: '10.0.0.3:7946' },
  ])
  t.strictSame(table.members, [a, b, oldC].sort(), 'a dead member keeps its partitions while no one replaced it')
  t.ok(table.update([
    { id: a, state: 'alive', peer: '10.0.0.1:7946' },
    { id: b, state: 'alive', peer: '10.0.0.2:7946' },
    { id: oldC, state: 'dead', peer: '10.0.0.3:7946' },
    { id: newC, state: 'alive', peer: '10.0.0.3:7946' },
  ]), 'the newcomer at its address changes placement')
  t.strictSame(table.members, [a, b, newC].sort(), 'the replaced member is out, the newcomer in')
  t.equal(table.ownedPartitions(newC).length, options.partitionCount, 'with N=3 of 3 the newcomer replicates everything')
  t.equal(table.update([
    { id: a, state: 'alive', peer: '10.0.0.1:7946' },
    { id: b, state: 'alive', peer: '10.0.0.2:7946' },
    { id: oldC, state: 'dead', peer: '10.0.0.3:7946' },
    { id: newC, state: 'suspect', peer: '10.0.0.3:7946' },
  ]), false, 'a newcomer that turns suspect keeps its place')
  t.ok(table.update([
    { id: a, state: 'alive', peer: '10.0.0.1:7946' },
    { id: b, state: 'alive', peer: '10.0.0.2:7946' },
    { id: oldC, state: 'dead', peer: '10.0.0.3:7946' },
    { id: newC, state: 'dead', peer: '10.0.0.3:7946' },
  ]), 'when both are dead, neither replaced the other')
  t.strictSame(table.members, [a, b, newC, oldC].sort())
})
