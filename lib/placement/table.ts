import type { NodeId } from '../clock/version.js'
import type { Hasher } from './hash.js'
import { partitionOf } from './partitions.js'
import {
  assertPlacementOptions, eligibleIds, rankIds,
  type KeyPlacement, type PlacementMember, type PlacementOptions,
} from './rendezvous.js'

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

  /** Adopts a new member list; true when placement changed (a member joined or left). */
  update(members: readonly PlacementMember[]): boolean {
    const ids = eligibleIds(members)
    const memberKey = ids.join(',')
    if (memberKey === this.#memberKey) return false
    const preferences: (readonly NodeId[])[] = []
    const replicas: (readonly NodeId[])[] = []
    for (let partition = 0; partition < this.#partitionCount; partition++) {
      const ranked = Object.freeze(rankIds(this.#hasher, partition, ids))
      preferences.push(ranked)
      replicas.push(Object.freeze(ranked.slice(0, this.#replicationFactor)))
    }
    this.#memberKey = memberKey
    this.#eligible = Object.freeze(ids)
    this.#preferences = preferences
    this.#replicas = replicas
    for (const listener of this.#listeners) listener()
    return true
  }

  /** Runs `listener` synchronously after every placement change. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener)
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
