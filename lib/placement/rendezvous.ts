import type { NodeId } from '../clock/version.js'
import type { MemberState } from '../membership/messages.js'
import type { Hasher } from './hash.js'
import { assertPartitionCount, partitionOf } from './partitions.js'

/**
 * Rendezvous (highest-random-weight) hashing, Thaler & Ravishankar 1998: every member gets a
 * pseudo-random rank per partition and the partition's replicas are the N highest ranks. A
 * joining node takes a partition only where it outranks the current N-th replica, and a leaving
 * node's partitions each promote their next-ranked member, so a membership change moves the
 * fewest partitions possible — and unlike a token ring there are no tokens to assign, gossip or
 * rebalance: the member ids alone determine placement on every node.
 */

/** What placement needs to know about a member; membership's Member satisfies it. */
export interface PlacementMember {
  readonly id: NodeId
  readonly state: MemberState
  /** Advertised peer address; lets a member that took over a down member's address replace it. */
  readonly peer?: string
}

export interface PlacementOptions {
  /** Q: partitions in the key space, fixed at cluster creation. */
  readonly partitionCount: number
  /** N: replicas per partition (`replication.factor`); N ≥ eligible members means full replication. */
  readonly replicationFactor: number
}

export interface KeyPlacement {
  readonly partition: number
  /** The top N of the partition's preference list, best-ranked first. */
  readonly replicas: readonly NodeId[]
}

/**
 * Suspect and dead members keep their place: a write meant for them becomes a hint handed off when
 * they return, instead of moving the partition on every false suspicion. Only a member that said
 * it is leaving gives its partitions up.
 */
export function isPlacementEligible(member: PlacementMember): boolean {
  return member.state !== 'left'
}

/**
 * Eligible member ids, sorted, after checking that no id appears twice. A dead member whose peer
 * address an alive (or suspect) member now answers at was replaced — typically the same machine
 * restarted with an empty data dir, hence a new id — and no longer holds partitions: otherwise
 * it would keep a share of every preference list until it is reaped (a day by default), and the
 * node in its place would replicate only the rest.
 */
export function eligibleIds(members: readonly PlacementMember[]): NodeId[] {
  // Suspect counts as answering: a newcomer that is briefly suspect must not hand its place back.
  const answering = (member: PlacementMember): boolean => member.state === 'alive' || member.state === 'suspect'
  const answeringPeers = new Set(members.flatMap(member => answering(member) && member.peer !== undefined ? [member.peer] : []))
  const replaced = (member: PlacementMember): boolean => member.state === 'dead' && member.peer !== undefined && answeringPeers.has(member.peer)
  const ids = members.filter(member => isPlacementEligible(member) && !replaced(member)).map(member => member.id).sort()
  for (let i = 1; i < ids.length; i++) {
    if (ids[i] === ids[i - 1]) throw new TypeError(`member ${ids[i]} appears twice in the member list`)
  }
  return ids
}

export function assertPlacementOptions(options: PlacementOptions): void {
  assertPartitionCount(options.partitionCount)
  if (!Number.isInteger(options.replicationFactor) || options.replicationFactor < 1) {
    throw new RangeError(`replication factor must be a positive integer, got ${options.replicationFactor}`)
  }
}

/**
 * Ranks already-validated, distinct ids. Ties (two equal 64-bit hashes) go to the smaller id so
 * the order never depends on the order members were listed in.
 */
export function rankIds(hasher: Hasher, partition: number, ids: readonly NodeId[]): NodeId[] {
  const ranked = ids.map(id => ({ id, rank: hasher.rank(partition, id) }))
  ranked.sort((a, b) => {
    if (a.rank !== b.rank) return a.rank > b.rank ? -1 : 1
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  })
  return ranked.map(entry => entry.id)
}

/** All eligible members of `partition`, most preferred first. */
export function preferenceList(hasher: Hasher, partition: number, members: readonly PlacementMember[]): NodeId[] {
  return rankIds(hasher, partition, eligibleIds(members))
}

export function replicasFor(
  hasher: Hasher, key: string, members: readonly PlacementMember[], options: PlacementOptions,
): KeyPlacement {
  assertPlacementOptions(options)
  const partition = partitionOf(hasher, key, options.partitionCount)
  return { partition, replicas: preferenceList(hasher, partition, members).slice(0, options.replicationFactor) }
}

/** Partitions `nodeId` replicates, ascending; empty when it is not an eligible member. */
export function ownedPartitions(
  hasher: Hasher, nodeId: NodeId, members: readonly PlacementMember[], options: PlacementOptions,
): number[] {
  assertPlacementOptions(options)
  const ids = eligibleIds(members)
  if (!ids.includes(nodeId)) return []
  const owned: number[] = []
  for (let partition = 0; partition < options.partitionCount; partition++) {
    if (rankIds(hasher, partition, ids).indexOf(nodeId) < options.replicationFactor) owned.push(partition)
  }
  return owned
}
