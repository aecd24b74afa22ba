import type { Version } from '../clock/version.js'
import type { JournalMedium } from '../paxos/acceptor-journal.js'
import type { ChangeLog } from './change-log.js'
import type { ApplyOutcome, ChangeListener, KeyedRecord, RawRangeOptions, ScanRequest, StorePage, StoreStats } from './kv-store.js'
import type { NodeIdentity } from './identity.js'
import type { MetaStore } from './meta.js'
import type { OrderedDatabase } from './ordered-database.js'
import type { StoredRecord } from './record.js'
import type { SegmentIndex } from './segment-index.js'

/**
 * The node's replica of the data as the other modules see it. The daemon's is KvStore (LMDB);
 * simulations use lib/sim/memory-store.ts. Both keep the same contract:
 *
 * - last writer wins: a record is stored only when it is newer than the stored one
 *   (compareRecords: strong above plain, then version; equal is an idempotent no-op), decided
 *   and written atomically per call;
 * - apply/applyMany/deleteIfVersion resolve once the change is durable, and change listeners
 *   hear of every committed change once, with the key's segment when a segment index is kept;
 * - the segment index (when kept) lists exactly the stored records' (key, version);
 * - scans return live records in UTF-8 byte order of their keys; rawRange every record;
 * - every applied record has a change log entry written with it, and its change event names it.
 */
export interface Store {
  /** The node's small durable facts (node id, incarnation, clock ceiling, last contact). */
  readonly meta: MetaStore
  /** Node id and incarnation, kept in `meta`. */
  readonly identity: NodeIdentity
  /** Hinted handoff's database (lib/replication/hints.ts owns its format). */
  readonly hints: OrderedDatabase<Uint8Array, Uint8Array>
  /** CASPaxos acceptor state by key (lib/paxos/acceptor-store.ts owns its format). */
  readonly paxos: OrderedDatabase<Uint8Array, Uint8Array>
  /** Where the acceptor's changes are durable before they reach `paxos` (lib/paxos/acceptor-journal.ts). */
  readonly paxosJournal: JournalMedium
  /** (key, version) by Merkle segment, when the store keeps the index. */
  readonly segments: SegmentIndex | undefined
  /** Every applied change in arrival order, for watches. */
  readonly changeLog: ChangeLog
  apply(key: string, record: StoredRecord): Promise<ApplyOutcome>
  applyMany(entries: readonly KeyedRecord[]): Promise<ApplyOutcome[]>
  /** The stored record, raw: tombstones and expired records included. */
  get(key: string): StoredRecord | undefined
  /** get(key)?.strong === true without decoding the record; absent: callers use get. */
  isStrong?(key: string): boolean
  scan(request: ScanRequest): StorePage
  rawRange(options?: RawRangeOptions): Iterable<KeyedRecord>
  /**
   * When the stored record of `key` arrived here (this node's clock, ms), for records that may be
   * collected (see mayBeCollected); a record stored before arrival times were kept counts as
   * arrived when the store was opened.
   */
  arrivalMs(key: string): number
  /** Removes each key whose stored record still has exactly that version; results in input order. */
  deleteIfVersion(candidates: readonly { readonly key: string; readonly version: Version }[]): Promise<boolean[]>
  onChange(listener: ChangeListener): () => void
  stats(): StoreStats
  close(): Promise<void>
}
