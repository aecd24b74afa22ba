import type { NodeId } from '../clock/version.js'

/**
 * Which replicas are known to hold what this node holds, per partition: the ground on which a
 * tombstone may be collected (ScyllaDB's repair-based tombstone GC; docs/consistency.md "Deletes
 * stay deleted"). A sync session started at S whose roots agreed for partition P with replica R
 * (SessionSummary.agreedPartitions) proves that R then held every record this node had held since
 * before S — or a newer one, or nothing where the record was past its grace. So a tombstone that
 * reached this node before S is on R, and once that is true for every other replica of P no
 * replica can hand the deleted value back: the tombstone may go, however long any partition lasted.
 *
 * Kept in memory only: after a restart nothing is collected until every replica has been synced
 * with again (one round each), which costs time, never data.
 */
export class SyncCertificates {
  /** partition → replica → start time (this node's clock, ms) of the latest agreeing session. */
  readonly #agreedAtMs = new Map<number, Map<NodeId, number>>()

  /** A session with `replica` started at `startedAtMs` agreed on `partitions`. */
  record(replica: NodeId, partitions: readonly number[], startedAtMs: number): void {
    for (const partition of partitions) {
      let byReplica = this.#agreedAtMs.get(partition)
      if (byReplica === undefined) {
        byReplica = new Map()
        this.#agreedAtMs.set(partition, byReplica)
      }
      byReplica.set(replica, Math.max(byReplica.get(replica) ?? -Infinity, startedAtMs))
    }
  }

  /**
   * The time before which every record this node received in `partition` is known to be on each
   * of `otherReplicas` (the partition's replicas but this node): the oldest of their latest
   * agreeing sessions; Infinity with no other replica; undefined while one has none yet.
   */
  heldEverywhereBeforeMs(partition: number, otherReplicas: readonly NodeId[]): number | undefined {
    let oldestMs = Infinity
    const byReplica = this.#agreedAtMs.get(partition)
    for (const replica of otherReplicas) {
      const agreedAtMs = byReplica?.get(replica)
      if (agreedAtMs === undefined) return undefined
      oldestMs = Math.min(oldestMs, agreedAtMs)
    }
    return oldestMs
  }

  /** Drops what is known about members that are gone, so the map stays bounded by the members. */
  forget(replica: NodeId): void {
    for (const byReplica of this.#agreedAtMs.values()) byReplica.delete(replica)
  }
}

export interface CollectionRuleOptions {
  readonly certificates: SyncCertificates
  readonly localId: NodeId
  /** The replicas of a partition (placement). */
  readonly replicasOf: (partition: number) => readonly NodeId[]
  readonly partitionOf: (key: string) => number
  /** When the key's stored record arrived here (Store.arrivalMs). */
  readonly arrivalMs: (key: string) => number
}

/** TombstoneCollector's heldByEveryReplica: the record arrived before every other replica last agreed with us. */
export function heldByEveryReplica(options: CollectionRuleOptions): (key: string) => boolean {
  return (key) => {
    const partition = options.partitionOf(key)
    const others = options.replicasOf(partition).filter((replica) => replica !== options.localId)
    const beforeMs = options.certificates.heldEverywhereBeforeMs(partition, others)
    return beforeMs !== undefined && options.arrivalMs(key) < beforeMs
  }
}
