import type { NodeId } from '../clock/version.js'
import type { Hasher } from './hash.js'
import { partitionOf } from './partitions.js'
import {
  assertPlacementOptions, eligibleIds, rankIds,
  type KeyPlacement, type PlacementMember, type PlacementOptions,
} from './rendezvous.js'

const NONE: readonly NodeId[] = Object.freeze([])
const NO_ONE: ReadonlySet<NodeId> = new Set()

/**
 * Preference lists of every partition for one member set, computed when the set changes and read
 * on every request. Membership changes are rare and cost Q·n hashes; a lookup is one key hash and
 * an array index. State changes among alive, suspect and dead leave placement (and the cache)
 * untouched — only a join or a leave recomputes.
 */
export class PlacementTable {
  readonly #hasher: Hasher
  readonly #partitionCount: number
  readonly #replicationFactor: number
  /** Sorted eligible ids the cache was computed for, joined: the cache key. */
  #memberKey: string | undefined
  #eligible: readonly NodeId[] = []
  /** Per partition: every eligible member, most preferred first. */
  #preferences: readonly (readonly NodeId[])[] = []
  /** Per partition: the first N of #preferences, kept so a lookup allocates nothing. */
  #replicas: readonly (readonly NodeId[])[] = []
  /** Per partition: who takes a leaving member's place once it is gone (see pendingReplicas). */
  #pending: readonly (readonly NodeId[])[] = []
  #leaving: readonly NodeId[] = []
  /** Called after every change, whatever caused it (CASPaxos's acceptor sets follow it: lib/paxos/acceptor-sets.ts). */
  readonly #listeners: (() => void)[] = []

  constructor(hasher: Hasher, options: PlacementOptions, members: readonly PlacementMember[] = []) {
    assertPlacementOptions(options)
    this.#hasher = hasher
    this.#partitionCount = options.partitionCount
    this.#replicationFactor = options.replicationFactor
    this.update(members)
  }

  get partitionCount(): number {
    return this.#partitionCount
  }

  /** Eligible member ids (not left), sorted. */
  get members(): readonly NodeId[] {
    return this.#eligible
  }

  /**
   * Adopts a new member list and the members that are leaving (decommissioning: still replicas,
   * see pendingReplicas); true when placement changed (a member joined or left, or one started
   * or stopped leaving).
   */
  update(members: readonly PlacementMember[], leaving: ReadonlySet<NodeId> = NO_ONE): boolean {
    const ids = eligibleIds(members)
    const leavingIds = ids.filter((id) => leaving.has(id))
    const memberKey = `${ids.join(',')}/${leavingIds.join(',')}`
    if (memberKey === this.#memberKey) return false
    const preferences: (readonly NodeId[])[] = []
    const replicas: (readonly NodeId[])[] = []
    const pending: (readonly NodeId[])[] = []
    for (let partition = 0; partition < this.#partitionCount; partition++) {
      const ranked = Object.freeze(rankIds(this.#hasher, partition, ids))
      const current = Object.freeze(ranked.slice(0, this.#replicationFactor))
      preferences.push(ranked)
      replicas.push(current)
      if (leavingIds.length === 0) {
        pending.push(NONE)
        continue
      }
      // Rendezvous hashing: without the leaving members, the next-ranked ones move up.
      const future = ranked.filter((id) => !leaving.has(id)).slice(0, this.#replicationFactor)
      const added = future.filter((id) => !current.includes(id))
      pending.push(added.length === 0 ? NONE : Object.freeze(added))
    }
    this.#memberKey = memberKey
    this.#eligible = Object.freeze(ids)
    this.#leaving = Object.freeze(leavingIds)
    this.#preferences = preferences
    this.#replicas = replicas
    this.#pending = pending
    for (const listener of this.#listeners) listener()
    return true
  }

  /** Runs `listener` synchronously after every placement change. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener)
  }

  /** Eligible members that are leaving (decommissioning), sorted. */
  get leaving(): readonly NodeId[] {
    return this.#leaving
  }

  partitionOf(key: string): number {
    return partitionOf(this.#hasher, key, this.#partitionCount)
  }

  /** Every eligible member of `partition`, most preferred first: replicas, then fallbacks. */
  preferenceList(partition: number): readonly NodeId[] {
    return this.#row(this.#preferences, partition)
  }

  replicas(partition: number): readonly NodeId[] {
    return this.#row(this.#replicas, partition)
  }

  /**
   * The members that will replicate `partition` once the leaving members are gone, and do not
   * now: a leaving member stays in replicas() (the acceptor set, the read set) until it has left,
   * while these take its writes too (extra write targets, as Cassandra's pending ranges), its
   * stream of the partition, hints and anti-entropy, so no key is short of N copies when it goes.
   */
  pendingReplicas(partition: number): readonly NodeId[] {
    return this.#row(this.#pending, partition)
  }

  /** pendingReplicas of the key's partition. */
  pendingFor(key: string): readonly NodeId[] {
    return this.#leaving.length === 0 ? NONE : this.pendingReplicas(this.partitionOf(key))
  }

  /** Partitions `nodeId` is a pending replica of, ascending. */
  pendingPartitions(nodeId: NodeId): number[] {
    const pending: number[] = []
    if (this.#leaving.length === 0) return pending
    this.#pending.forEach((ids, partition) => {
      if (ids.includes(nodeId)) pending.push(partition)
    })
    return pending
  }

  replicasFor(key: string): KeyPlacement {
    const partition = this.partitionOf(key)
    return { partition, replicas: this.replicas(partition) }
  }

  /** Partitions `nodeId` replicates, ascending. */
  ownedPartitions(nodeId: NodeId): number[] {
    const owned: number[] = []
    this.#replicas.forEach((replicas, partition) => {
      if (replicas.includes(nodeId)) owned.push(partition)
    })
    return owned
  }

  #row(rows: readonly (readonly NodeId[])[], partition: number): readonly NodeId[] {
    const row = rows[partition]
    if (row === undefined) throw new RangeError(`partition must be an integer in [0, ${this.#partitionCount}), got ${partition}`)
    return row
  }
}
