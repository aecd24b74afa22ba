import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { loadHasher } from '../../lib/placement/hash.js'
import { ownedPartitions, preferenceList, type PlacementMember } from '../../lib/placement/rendezvous.js'
import { membersOf, seededIds } from './fixtures/ids.js'

const hasher = await loadHasher()
const options = { partitionCount: 256, replicationFactor: 3 }
const SEEDS = [2001, 2002, 2003, 2004, 2005]

function replicaSets(members: readonly PlacementMember[]): Set<NodeId>[] {
  return Array.from({ length: options.partitionCount }, (_, p) =>
    new Set(preferenceList(hasher, p, members).slice(0, options.replicationFactor)))
}

const minus = (a: Set<NodeId>, b: Set<NodeId>): NodeId[] => [...a].filter(id => !b.has(id))

t.test('a sixth node joining changes only partitions it enters, each by exactly one member', async t => {
  // Ideal: the newcomer enters a partition's top 3 with probability 3/6, so ≈ 128 of 256 change.
  const ideal = (options.partitionCount * options.replicationFactor) / 6
  const changedCounts: number[] = []
  for (const seed of SEEDS) {
    const ids = seededIds(seed, 6)
    const newcomer = ids[5] as NodeId
    const before = replicaSets(membersOf(ids.slice(0, 5)))
    const after = replicaSets(membersOf(ids))
    let changed = 0
    for (let p = 0; p < options.partitionCount; p++) {
      const old = before[p] as Set<NodeId>
      const now = after[p] as Set<NodeId>
      const gained = minus(now, old)
      if (gained.length === 0) {
        t.strictSame(minus(old, now), [], `partition ${p} unchanged`)
        continue
      }
      changed++
      t.strictSame(gained, [newcomer], `seed ${seed} partition ${p} gains only the newcomer`)
      t.equal(minus(old, now).length, 1, `seed ${seed} partition ${p} loses exactly one member`)
    }
    t.equal(changed, ownedPartitions(hasher, newcomer, membersOf(ids), options).length,
      'the changed partitions are exactly those the newcomer now holds')
    t.ok(Math.abs(changed - ideal) <= ideal * 0.25, `seed ${seed}: ${changed} partitions changed, ideal ${ideal}`)
    changedCounts.push(changed)
  }
  t.comment(`partitions whose replica set changed on join: ${changedCounts.join(', ')} (ideal ${ideal} of ${options.partitionCount})`)
})

t.test('a join keeps the relative order of the existing members in every preference list', async t => {
  const ids = seededIds(2100, 6)
  const newcomer = ids[5] as NodeId
  for (let p = 0; p < options.partitionCount; p++) {
    const before = preferenceList(hasher, p, membersOf(ids.slice(0, 5)))
    const after = preferenceList(hasher, p, membersOf(ids)).filter(id => id !== newcomer)
    if (!t.strictSame(after, before, `partition ${p}`)) break
  }
})

t.test('a leave moves only partitions the leaver held, replacing it by one member', async t => {
  const changedCounts: number[] = []
  for (const seed of SEEDS) {
    const ids = seededIds(seed, 6)
    const leaver = ids[2] as NodeId
    const members = membersOf(ids)
    const held = new Set(ownedPartitions(hasher, leaver, members, options))
    const afterLeave = members.map(m => (m.id === leaver ? { id: leaver, state: 'left' as const } : m))
    const before = replicaSets(members)
    const after = replicaSets(afterLeave)
    let changed = 0
    for (let p = 0; p < options.partitionCount; p++) {
      const old = before[p] as Set<NodeId>
      const now = after[p] as Set<NodeId>
      const lost = minus(old, now)
      if (!held.has(p)) {
        t.strictSame(lost, [], `seed ${seed} partition ${p} was not the leaver's and stays put`)
        continue
      }
      changed++
      t.strictSame(lost, [leaver], `seed ${seed} partition ${p} loses only the leaver`)
      t.equal(minus(now, old).length, 1, `seed ${seed} partition ${p} gains exactly one member`)
    }
    t.equal(changed, held.size)
    changedCounts.push(changed)
  }
  t.comment(`partitions whose replica set changed on leave: ${changedCounts.join(', ')}`)
})

t.test('suspicion and death move no partition', async t => {
  const ids = seededIds(2200, 5)
  const healthy = replicaSets(membersOf(ids))
  const troubled = replicaSets(membersOf(ids).map((m, i) =>
    (i === 0 ? { id: m.id, state: 'suspect' as const } : i === 1 ? { id: m.id, state: 'dead' as const } : m)))
  t.strictSame(troubled, healthy)
})
