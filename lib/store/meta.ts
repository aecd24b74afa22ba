import type { OrderedDatabase } from './ordered-database.js'

/** Everything the node keeps about itself, one LMDB entry each. */
export type MetaKey =
  /** NodeId, created once (identity.ts). */
  | 'nodeId'
  /** Restart counter, bumped at every start (identity.ts). */
  | 'incarnation'
  /** HLC reserved ceiling in ticks (high-water.ts). */
  | 'hlcCeiling'
  /** The key → segment mapping the segment index was built with (segment-index.ts). */
  | 'segmentScheme'
  /**
   * The segment index holds the entry of every key the change log names up to this position
   * ([arrivedMs, seq], null: before the first entry); later ones may have been deferred (kv-store.ts).
   */
  | 'segmentIndexThrough'
  /** Wall-clock ms when this node last had another member alive (antientropy/away.ts). */
  | 'lastPeerContactMs'
  /** True while the node must repair before serving (away longer than the tombstone grace). */
  | 'repairRequired'
  /** Every change that arrived at or after this wall-clock ms is in the change log (change-log.ts). */
  | 'changeLogHorizonMs'
  /** The cluster's removal and leaving records as this node last held them (lib/lifecycle). */
  | 'lifecycle'
  /** Removal repairs still owed here: partitions gained from removed members and the replicas synced (lifecycle/removal-repair.ts). */
  | 'removalRepairs'
  /** Wall-clock ms this node finished a decommission: it does not start on this data dir again. */
  | 'decommissionedAtMs'
  /** Per partition: the acceptor set this node last answered for and what it must catch up (paxos/acceptor-sets.ts). */
  | 'paxosAcceptorSets'

/**
 * The `meta` database: small values (strings and numbers, lmdb's msgpack encoding), read
 * synchronously, written durably.
 */
export class MetaStore {
  constructor(private readonly db: OrderedDatabase<unknown, string>) {}

  read(key: MetaKey): unknown {
    return this.db.get(key)
  }

  /**
   * Replaces the value of `key` with `next(current)` in one transaction (so concurrent updates
   * cannot lose each other) and resolves with the written value once it is flushed to disk.
   */
  async update<T>(key: MetaKey, next: (current: unknown) => T): Promise<T> {
    const written = await this.db.transaction(() => {
      const value = next(this.db.get(key))
      void this.db.put(key, value)
      return value
    })
    await this.db.flushed
    return written
  }
}
