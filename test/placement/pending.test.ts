import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { loadHasher } from '../../lib/placement/hash.js'
import { PlacementTable } from '../../lib/placement/table.js'
import { membersOf, seededIds } from './fixtures/ids.js'

const hasher = await loadHasher()
const options = { partitionCount: 64, replicationFactor: 3 }

t.test('a leaving member keeps its partitions; the member that takes each one over is its pending replica', async t => {
  const ids = seededIds(4101, 5)
  const members = membersOf(ids)
  const leaving = ids[0] as NodeId
  const table = new PlacementTable(hasher, options, members)
  const before = Array.from({ length: 64 }, (_, p) => table.replicas(p))
  t.equal(table.update(members, new Set([leaving])), true, 'starting to leave is a placement change')
  const after = new PlacementTable(hasher, options, members.filter((m) => m.id !== leaving))
  for (let p = 0; p < 64; p++) {
    t.strictSame(table.replicas(p), before[p], `partition ${p}: the replica set is unchanged while leaving`)
    const expected = after.replicas(p).filter((id) => !before[p]!.includes(id))
    t.strictSame(table.pendingReplicas(p), expected, `partition ${p}: pending = owners once it is gone, minus the current ones`)
    t.equal(table.pendingReplicas(p).length, before[p]!.includes(leaving) ? 1 : 0)
  }
  const owned = table.ownedPartitions(leaving)
  const pendingOf = ids.slice(1).flatMap((id) => table.pendingPartitions(id))
  t.strictSame(pendingOf.sort((a, b) => a - b), owned, 'every partition of the leaving member has exactly one pending replica')
  t.strictSame(table.leaving, [leaving])
  const key = 'some/key'
  t.strictSame(table.pendingFor(key), table.pendingReplicas(table.partitionOf(key)))
  t.equal(table.update(members, new Set([leaving])), false, 'the same leaving set is no change')
  t.equal(table.update(members), true, 'a cancelled leave is a change')
  t.strictSame(table.pendingFor(key), [])
  t.strictSame(table.pendingPartitions(ids[1] as NodeId), [])
})

t.test('a leaving id that is not a member changes nothing', async t => {
  const ids = seededIds(4102, 4)
  const table = new PlacementTable(hasher, options, membersOf(ids))
  t.equal(table.update(membersOf(ids), new Set(['00000000000000ff' as NodeId])), false)
  t.strictSame(table.leaving, [])
})
