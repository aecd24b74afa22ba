import { promises as fs, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { open, type Database, type RootDatabase } from 'lmdb'
import { compareVersions, type Version } from '../clock/version.js'
import { BadRequestError } from '../errors.js'
import { ChangeLog, decodePosition, keysLoggedAfter, type ChangePosition } from './change-log.js'
import { decodeKey, encodeKey, keyRange } from './keys.js'
import { NodeIdentity } from './identity.js'
import { lockDataDir, type DataDirLock } from './lock.js'
import { MetaStore } from './meta.js'
import { compareRecords, isLive, mayBeCollected, type StoredRecord } from './record.js'
import { decodeRecord, encodeRecord, isStrongRecord, writeRecordVersion } from './record-codec.js'
import { encodeSegmentVersion, SegmentIndex, type DeferredMark, type SegmentIndexOptions } from './segment-index.js'
import type { Store } from './store.js'
import { JournalDirectory } from './journal-files.js'

/**
 * Recorded with the segment scheme: an index written in another format (before issue 15 each
 * entry held its key's version) is rebuilt at open. 'deferred' (session 4): new keys' entries
 * may lag the records by up to a checkpoint, the change log covering the gap, so a build that
 * does not replay the log must not take such an index as complete (it rebuilds it instead).
 */
const SEGMENT_INDEX_FORMAT = 'keys-only deferred'
/** The format before deferred entries: complete at every commit, taken over as it is. */
const SEGMENT_INDEX_FORMAT_COMPLETE = 'keys-only'
/**
 * New keys whose index entries wait in memory before a transaction writes them all, sorted: the
 * more wait, the more share an index page, but the longer a replay after a crash, and LMDB keeps
 * (as anonymous memory, for reuse) as many page buffers as its largest transaction dirtied: at
 * most ~2048 pages, 8 MiB, here.
 */
const MAX_DEFERRED_SEGMENT_ENTRIES = 2048
/** A commit writes the waiting index entries and records the checkpoint at least this often. */
const SEGMENT_CHECKPOINT_INTERVAL_MS = 2000
/** A version as the Merkle hashes take it: hlc uint64 BE ‖ node id. */
const SEGMENT_VERSION_BYTES = 16
/** The acceptor journal's directory in the data dir (lib/store/journal-files.ts). */
export const PAXOS_JOURNAL_DIR = 'paxos-journal'
/** kv, meta, hints, segments, arrivals, changes, paxos; a little room for what comes later. */
const MAX_DATABASES = 8
/**
 * Dead records (tombstones, expired) one scan page may step over before it returns early with
 * a cursor: a page costs at most limit + this many reads, however many deletes precede it.
 */
export const MAX_SKIPPED_PER_PAGE = 10_000

export interface KvStoreOptions {
  /** Directory of the LMDB environment and the pid file; created when missing. */
  readonly dataDir: string
  /** Initial LMDB map size; lmdb-js grows the map when it fills up. */
  readonly mapSizeBytes: number
  /** Keep the segment index anti-entropy lists leaves from (see segment-index.ts). */
  readonly segments?: SegmentIndexOptions
  /** The node's clock for arrival times (see Store.arrivalMs); the daemon's, with its offset. */
  readonly nowMs?: () => number
}

export interface KeyedRecord {
  readonly key: string
  readonly record: StoredRecord
}

export interface ApplyOutcome {
  /** True when the record was newer than what the store held and is now stored. */
  readonly applied: boolean
  /** What the store held before (tombstones and expired records included). */
  readonly previous?: StoredRecord
}

export interface ScanRequest {
  /** Only keys starting with this prefix ('' = all). */
  readonly prefix: string
  /** Only keys strictly after this one (a previous page's `next`). */
  readonly after?: string
  /** Most items in the page (≥ 1); the caller clamps it. */
  readonly limit: number
  /** Records expired at this wall-clock time read as absent. */
  readonly nowMs: number
}

export interface StorePage {
  /** Live records in UTF-8 byte order of their keys. */
  readonly items: KeyedRecord[]
  /** Pass as `after` for the next page; null when the range is exhausted. */
  readonly next: string | null
}

export interface RawRangeOptions {
  readonly prefix?: string
  readonly after?: string
  /** Only keys ≥ start and < end (UTF-8 byte order), besides the prefix. */
  readonly start?: string
  readonly end?: string
  readonly limit?: number
}

/** One committed change of a key's record; `current` undefined = the record was collected. */
export interface RecordChange {
  readonly key: string
  readonly previous: StoredRecord | undefined
  readonly current: StoredRecord | undefined
  /** The key's segment when the store keeps a segment index: listeners need not hash the key again. */
  readonly segment: number | undefined
  /** Where the change sits in the change log; undefined for what is not logged (GC collection). */
  readonly logged?: ChangePosition
}

export type ChangeListener = (change: RecordChange) => void

export interface StoreStats {
  /** Exact number of stored records, tombstones and expired ones included (LMDB's entry count). */
  readonly keys: number
  /** Bytes of the pages the kv database occupies (not the file size, which includes free pages). */
  readonly sizeBytes: number
}

export interface StorageStats {
  /** Size of the LMDB map now (lmdb-js grows it when it fills, as long as the disk has room). */
  readonly mapBytes: number
  /** Bytes of the map in use (up to the last page written, free pages inside included). */
  readonly usedBytes: number
  readonly mapFreeBytes: number
  /** Free bytes on the file system of the data dir for this user; null where unknown. */
  readonly diskFreeBytes: number | null
}

interface QueuedApply {
  readonly prepared: readonly PreparedWrite[]
  readonly resolve: (outcomes: ApplyOutcome[]) => void
  readonly reject: (error: unknown) => void
}

interface PreparedWrite {
  readonly key: string
  readonly keyBytes: Buffer
  /** The key's segment when the store keeps a segment index. */
  readonly segment: number
  readonly record: StoredRecord
  readonly encoded: Buffer
}

/**
 * The node's replica of the data: one LMDB environment in the data dir with the databases
 * `kv` (key → record), `meta` (see meta.ts) and `hints` (reserved for hinted handoff).
 *
 * Writes go through apply/applyMany only: last-writer-wins by version, decided and written in
 * one LMDB transaction, acknowledged once flushed to disk. lmdb-js puts every transaction queued
 * in one event-loop turn into one commit, so concurrent applies share the fsync.
 */
export class KvStore implements Store {
  /** The node's small durable facts (node id, incarnation, clock ceiling). */
  readonly meta: MetaStore
  /** Node id and incarnation, kept in `meta`. */
  readonly identity: NodeIdentity
  /** Reserved for hinted handoff (binary keys and values); empty until replication uses it. */
  readonly hints: Database<Uint8Array, Uint8Array>
  /** (key, version) by Merkle segment, when opened with `segments`. */
  readonly segments: SegmentIndex | undefined
  /** Every applied change in arrival order, for watches (change-log.ts). */
  readonly changeLog: ChangeLog
  /** CASPaxos acceptor state (lib/paxos/acceptor-store.ts); binary keys and values. */
  readonly paxos: Database<Uint8Array, Uint8Array>
  /** The acceptor journal's segments: `paxos-journal/` in the data dir. */
  readonly paxosJournal: JournalDirectory
  private readonly listeners = new Set<ChangeListener>()
  /** Applies waiting for this turn's transaction (see commitApplies). */
  private applyQueue: QueuedApply[] = []
  private applyScheduled = false
  private closed = false
  private readonly openedAtMs: number
  /** The change log position the segment index is complete up to (see segmentIndexThrough). */
  private segmentCheckpoint: ChangePosition | undefined
  private segmentCheckpointMs: number

  private constructor(
    readonly dataDir: string,
    private readonly root: RootDatabase,
    private readonly kv: Database<Uint8Array, Uint8Array>,
    meta: Database<unknown, string>,
    hints: Database<Uint8Array, Uint8Array>,
    segments: SegmentIndex | undefined,
    private readonly lock: DataDirLock,
    /** UTF-8 key → arrival ms, for records that may be collected (see Store.arrivalMs). */
    private readonly arrivals: Database<number, Uint8Array>,
    private readonly nowMs: () => number,
    changes: Database<Uint8Array, Uint8Array>,
    paxos: Database<Uint8Array, Uint8Array>,
    private readonly metaDb: Database<unknown, string>,
    segmentCheckpoint: ChangePosition | undefined,
  ) {
    this.paxos = paxos
    this.paxosJournal = new JournalDirectory(join(dataDir, PAXOS_JOURNAL_DIR))
    this.openedAtMs = nowMs()
    this.segmentCheckpoint = segmentCheckpoint
    this.segmentCheckpointMs = this.openedAtMs
    this.meta = new MetaStore(meta)
    this.identity = new NodeIdentity(this.meta)
    this.hints = hints
    this.segments = segments
    this.changeLog = new ChangeLog({
      db: changes,
      lastKey: () => {
        for (const key of changes.getKeys({ reverse: true, limit: 1 })) return key
        return undefined
      },
      count: () => (changes.getStats() as { entryCount: number }).entryCount,
      // Entries after the segment checkpoint name the keys whose index entries a crash may lose:
      // a trim that reaches them first brings the checkpoint up to the log's end.
      keepAfter: async (beforeMs) => {
        if (segments === undefined) return null
        if ((this.segmentCheckpoint?.arrivedMs ?? 0) < beforeMs) await this.advanceSegmentCheckpoint()
        return this.segmentCheckpoint ?? 'everything'
      },
    }, this.meta, nowMs, (kv.getStats() as { entryCount: number }).entryCount === 0)
  }

  /** Opens (creating if needed) the store; throws DataDirLockedError if another daemon has it. */
  static async open({ dataDir, mapSizeBytes, segments, nowMs = Date.now }: KvStoreOptions): Promise<KvStore> {
    if (!Number.isSafeInteger(mapSizeBytes) || mapSizeBytes <= 0) throw new RangeError(`mapSizeBytes must be a positive integer, got ${mapSizeBytes}`)
    await fs.mkdir(dataDir, { recursive: true })
    const lock = await lockDataDir(dataDir)
    try {
      // noSubdir: false, or lmdb-js takes a dir name with a dot in it for a file name.
      const root = open({ path: dataDir, noSubdir: false, maxDbs: MAX_DATABASES, mapSize: mapSizeBytes })
      // In a new data dir lmdb-js creates each database in a write transaction of its own, each
      // synced to disk: one transaction for all spares a first start six syncs (issue 15).
      const [kv, meta, hints, arrivals, changes, paxos, segmentsDb] = root.transactionSync(() => [
        root.openDB<Uint8Array, Uint8Array>('kv', { keyEncoding: 'binary', encoding: 'binary' }),
        root.openDB<unknown, string>('meta', {}),
        root.openDB<Uint8Array, Uint8Array>('hints', { keyEncoding: 'binary', encoding: 'binary' }),
        root.openDB<number, Uint8Array>('arrivals', { keyEncoding: 'binary' }),
        root.openDB<Uint8Array, Uint8Array>('changes', { keyEncoding: 'binary', encoding: 'binary' }),
        root.openDB<Uint8Array, Uint8Array>('paxos', { keyEncoding: 'binary', encoding: 'binary' }),
        segments === undefined ? undefined : root.openDB<Uint8Array, Uint8Array>('segments', { keyEncoding: 'binary', encoding: 'binary' }),
      ] as const)
      let index: SegmentIndex | undefined
      let checkpoint: ChangePosition | undefined
      if (segments !== undefined && segmentsDb !== undefined) {
        const db = segmentsDb
        index = new SegmentIndex(db, segments.segmentOf, (keyBytes) => {
          // A view LMDB reuses on the next read: only the version (numbers and a string) is kept.
          const bytes = kv.getBinaryFast(keyBytes)
          return bytes === undefined ? undefined : decodeRecord(bytes, decodeKey(keyBytes)).version
        }, function* () {
          // The tree rebuild at start: only each record's version is needed, so the value is
          // neither copied (getBinaryFast: a view reused by the next read) nor decoded.
          const versionBytes = Buffer.allocUnsafe(SEGMENT_VERSION_BYTES)
          for (const keyBytes of kv.getKeys({ snapshot: false })) {
            const bytes = kv.getBinaryFast(keyBytes)
            if (bytes === undefined) continue
            const key = decodeKey(keyBytes)
            if (!writeRecordVersion(bytes, versionBytes)) versionBytes.set(encodeSegmentVersion(decodeRecord(bytes, key).version))
            yield { keyBytes, key, versionBytes }
          }
        })
        checkpoint = await completeSegmentIndex(kv, db, changes, index, meta, segments.scheme)
      } else if (meta.get('segmentScheme') !== undefined) {
        // Writes without the index would leave it stale: the next open with it must rebuild.
        await meta.remove('segmentScheme')
      }
      return new KvStore(dataDir, root, kv, meta, hints, index, lock, arrivals, nowMs, changes, paxos, meta, checkpoint)
    } catch (error) {
      await lock.release()
      throw error
    }
  }

  /**
   * Stores `record` if it is newer (compareRecords) than the stored one; an equal version is
   * an idempotent no-op. Resolves once the write is durable on disk.
   */
  async apply(key: string, record: StoredRecord): Promise<ApplyOutcome> {
    const [outcome] = await this.applyMany([{ key, record }])
    if (outcome === undefined) throw new Error('applyMany returned no outcome for one entry')
    return outcome
  }

  /**
   * apply() for several records, atomically; outcomes in input order. Every apply of one
   * event-loop turn (local writes, replica batches, hints, sync) shares one LMDB transaction
   * and one wait for its flush (see #commitApplies).
   */
  applyMany(entries: readonly KeyedRecord[]): Promise<ApplyOutcome[]> {
    let prepared: PreparedWrite[]
    try {
      this.assertOpen()
      const segmentOf = this.segments?.segmentOf
      prepared = entries.map(({ key, record }): PreparedWrite => ({
        key, keyBytes: encodeKey(key), segment: segmentOf === undefined ? 0 : segmentOf(key), record, encoded: encodeRecord(record),
      }))
    } catch (error) {
      return Promise.reject(error)
    }
    if (prepared.length === 0) return Promise.resolve([])
    return new Promise((resolve, reject) => {
      this.applyQueue.push({ prepared, resolve, reject })
      if (!this.applyScheduled) {
        this.applyScheduled = true
        setImmediate(this.commitApplies)
      }
    })
  }

  /**
   * Decides and writes every apply queued this turn in one transaction, each call on its own (a
   * call that fails, a corrupt stored record say, fails alone and writes nothing: its entries
   * are all decided before any is written), then answers them once the commit is flushed.
   */
  private readonly commitApplies = (): void => {
    this.applyScheduled = false
    const queued = this.applyQueue
    if (queued.length === 0) return
    this.applyQueue = []
    const results: ({ readonly outcomes: ApplyOutcome[]; readonly changes: RecordChange[] } | { readonly error: unknown })[] = []
    let committed: Promise<void>
    let indexed: DeferredMark | undefined
    try {
      committed = this.kv.transaction(() => {
        for (const { prepared } of queued) {
          try {
            results.push(this.applyInTransaction(prepared))
          } catch (error) {
            results.push({ error })
          }
        }
        indexed = this.checkpointSegments(false)
      })
    } catch (error) {
      // LMDB refused to queue the transaction (its environment is gone): nothing was written.
      for (const { reject } of queued) reject(error)
      return
    }
    committed.then(() => this.kv.flushed).then(() => {
      if (indexed !== undefined) this.segments?.written(indexed)
      queued.forEach(({ resolve, reject }, i) => {
        const result = results[i]
        if (result === undefined) return reject(new Error('the apply transaction ran without this call'))
        if ('error' in result) return reject(result.error)
        try {
          this.notify(result.changes)
        } catch (error) {
          // A listener's failure reaches its caller, as it did when each call notified alone.
          return reject(error)
        }
        resolve(result.outcomes)
      })
    }, (error: unknown) => {
      for (const { reject } of queued) reject(error)
    })
  }

  /**
   * In the caller's write transaction: when enough new keys wait for their segment index entry
   * (or a while has passed, or `force`), writes them all, sorted, and records how far the change
   * log is covered (segmentIndexThrough), so a restart replays only what came after. Returns the
   * mark of the entries written, for SegmentIndex.written once the transaction committed.
   */
  private checkpointSegments(force: boolean): DeferredMark | undefined {
    const index = this.segments
    if (index === undefined) return undefined
    const nowMs = this.nowMs()
    const due = force || index.deferredCount >= MAX_DEFERRED_SEGMENT_ENTRIES || nowMs - this.segmentCheckpointMs >= SEGMENT_CHECKPOINT_INTERVAL_MS
    if (!due) return undefined
    this.segmentCheckpointMs = nowMs
    const last = this.changeLog.last()
    if (index.deferredCount === 0 && last?.seq === this.segmentCheckpoint?.seq) return undefined
    const written = index.writeDeferred()
    void this.metaDb.put('segmentIndexThrough', last === undefined ? null : [last.arrivedMs, last.seq])
    this.segmentCheckpoint = last
    return written
  }

  /** Writes every deferred segment index entry now, in a transaction of its own. */
  private async flushSegments(): Promise<void> {
    if (this.segments === undefined || this.segments.deferredCount === 0) return
    await this.advanceSegmentCheckpoint()
  }

  /** A checkpoint now (deferred entries written, the log position recorded), if anything moved. */
  private async advanceSegmentCheckpoint(): Promise<void> {
    if (this.segments === undefined) return
    if (this.segments.deferredCount === 0 && this.changeLog.last()?.seq === this.segmentCheckpoint?.seq) return
    let indexed: DeferredMark | undefined
    await this.kv.transaction(() => { indexed = this.checkpointSegments(true) })
    await this.kv.flushed
    if (indexed !== undefined) this.segments.written(indexed)
  }

  /** The stored record, raw: tombstones and expired records included (replication needs them). */
  get(key: string): StoredRecord | undefined {
    this.assertOpen()
    return this.readRecord(encodeKey(key), key)
  }

  /**
   * True when the stored record of `key` is strong (committed through CASPaxos), read without a
   * copy or a decode: the coordinator asks before every plain write.
   */
  isStrong(key: string): boolean {
    this.assertOpen()
    const bytes = this.kv.getBinaryFast(encodeKey(key))
    return bytes !== undefined && isStrongRecord(bytes, key)
  }

  /** One page of live records in key order, without reading past what the page needs. */
  scan({ prefix, after, limit, nowMs }: ScanRequest): StorePage {
    this.assertOpen()
    if (!Number.isSafeInteger(limit) || limit < 1) throw new BadRequestError(`limit must be a positive integer, got ${limit}`, { param: 'limit' })
    const items: KeyedRecord[] = []
    let skipped = 0
    let lastVisited: string | undefined
    for (const { key, value } of this.kv.getRange(this.rangeBounds(prefix, after))) {
      // Another entry exists beyond a full page: the page ends at the last key visited.
      if (items.length === limit || skipped === MAX_SKIPPED_PER_PAGE) return { items, next: lastVisited ?? null }
      const keyText = decodeKey(key)
      lastVisited = keyText
      const record = decodeRecord(value, keyText)
      if (isLive(record, nowMs)) items.push({ key: keyText, record })
      else skipped++
    }
    return { items, next: null }
  }

  /**
   * Every record in key order, tombstones and expired ones included, for anti-entropy and GC.
   * Lazy; does not pin a snapshot, so long walks do not hold LMDB's free pages hostage.
   */
  *rawRange({ prefix = '', after, start, end, limit }: RawRangeOptions = {}): Generator<KeyedRecord> {
    this.assertOpen()
    const range = { ...keyRange(prefix, after, { ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}) }), snapshot: false, ...(limit === undefined ? {} : { limit }) }
    for (const { key, value } of this.kv.getRange(range)) {
      const keyText = decodeKey(key)
      yield { key: keyText, record: decodeRecord(value, keyText) }
    }
  }

  /**
   * Removes each key whose stored record still has exactly the given version (checked inside
   * the transaction, so a newer write that raced in survives). Results in input order.
   */
  async deleteIfVersion(candidates: readonly { readonly key: string; readonly version: Version }[]): Promise<boolean[]> {
    this.assertOpen()
    const prepared = candidates.map(({ key, version }) => ({ key, version, keyBytes: encodeKey(key) }))
    if (prepared.length === 0) return []
    const { removed, changes } = await this.kv.transaction(() => {
      // Read everything first: a corrupt record then aborts the call before any removal.
      const current = prepared.map(({ key, keyBytes }) => this.readRecord(keyBytes, key))
      const seen = new Set<string>()
      const removedInTxn = prepared.map(({ key, version }, i) => {
        const record = current[i]
        const matches = record !== undefined && !seen.has(key) && compareVersions(record.version, version) === 0
        if (matches) seen.add(key)
        return matches
      })
      const changesInTxn: RecordChange[] = []
      prepared.forEach(({ key, keyBytes }, i) => {
        if (!removedInTxn[i]) return
        void this.kv.remove(keyBytes)
        void this.arrivals.remove(keyBytes)
        const segment = this.segments?.segmentOf(key)
        if (segment !== undefined) this.segments?.remove(keyBytes, segment)
        changesInTxn.push({ key, previous: current[i], current: undefined, segment })
      })
      return { removed: removedInTxn, changes: changesInTxn }
    })
    this.notify(changes)
    return removed
  }

  arrivalMs(key: string): number {
    this.assertOpen()
    return this.arrivals.get(encodeKey(key)) ?? this.openedAtMs
  }

  /** Called after each committed change (apply and deleteIfVersion); returns an unsubscribe. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  stats(): StoreStats {
    this.assertOpen()
    const stats = this.kv.getStats() as { entryCount: number; pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
    return {
      keys: stats.entryCount,
      sizeBytes: (stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages) * stats.pageSize,
    }
  }

  /**
   * A compacted copy of the whole environment, every database from one read transaction, into
   * the empty directory `directory` (lib/store/snapshot.ts frames it for transport).
   */
  async backup(directory: string): Promise<void> {
    this.assertOpen()
    // The copy's segment index then lists every key without a replay.
    await this.flushSegments()
    await this.root.flushed
    await this.root.backup(directory, true)
  }

  /** How full the LMDB map and the disk under the data dir are (for /health). */
  storage(): StorageStats {
    this.assertOpen()
    const env = this.root.getStats() as { pageSize: number; mapSize: number; lastPageNumber: number }
    const usedBytes = (env.lastPageNumber + 1) * env.pageSize
    let diskFreeBytes: number | null = null
    try {
      const disk = statfsSync(this.dataDir)
      diskFreeBytes = disk.bavail * disk.bsize
    } catch { /* a file system without statfs: leave it out */ }
    return { mapBytes: env.mapSize, usedBytes, mapFreeBytes: Math.max(0, env.mapSize - usedBytes), diskFreeBytes }
  }

  /** Waits for queued writes, closes LMDB and releases the data dir. */
  async close(): Promise<void> {
    if (this.closed) return
    // Applies already accepted still commit (the scheduled run then finds nothing to do).
    this.commitApplies()
    this.closed = true
    try {
      // A clean stop leaves nothing for the next start to replay.
      await this.flushSegments()
      await this.root.flushed
      await this.root.close()
    } finally {
      await this.lock.release()
    }
  }

  private applyInTransaction(prepared: readonly PreparedWrite[]): { outcomes: ApplyOutcome[]; changes: RecordChange[] } {
    // Decide every entry before writing any: a corrupt stored record then fails the whole call
    // without a partial write. `latest` carries decisions to later entries for the same key.
    const latest = new Map<string, StoredRecord | undefined>()
    const outcomes: ApplyOutcome[] = []
    const winners: { write: PreparedWrite; previous: StoredRecord | undefined }[] = []
    for (const entry of prepared) {
      const previous = latest.has(entry.key) ? latest.get(entry.key) : this.readRecord(entry.keyBytes, entry.key)
      const applied = previous === undefined || compareRecords(entry.record, previous) > 0
      if (applied) {
        latest.set(entry.key, entry.record)
        winners.push({ write: entry, previous })
      } else {
        latest.set(entry.key, previous)
      }
      outcomes.push(previous === undefined ? { applied } : { applied, previous })
    }
    const arrivedMs = this.nowMs()
    const changes: RecordChange[] = []
    for (const { write: { key, keyBytes, segment, record, encoded }, previous } of winners) {
      void this.kv.put(keyBytes, encoded)
      // A key's segment never changes: its index entry is written when the key first appears,
      // with the other new keys of the next checkpoint (checkpointSegments).
      if (previous === undefined) this.segments?.defer(key, segment)
      if (mayBeCollected(record)) void this.arrivals.put(keyBytes, arrivedMs)
      else if (previous !== undefined && mayBeCollected(previous)) void this.arrivals.remove(keyBytes)
      // In this transaction: a committed record always has its change log entry.
      const logged = this.changeLog.stage(keyBytes, encoded, arrivedMs)
      changes.push({ key, previous, current: record, segment: this.segments === undefined ? undefined : segment, logged })
    }
    return { outcomes, changes }
  }

  private readRecord(keyBytes: Buffer, key: string): StoredRecord | undefined {
    const bytes = this.kv.get(keyBytes)
    return bytes === undefined ? undefined : decodeRecord(bytes, key)
  }

  /** LMDB range options for keys with `prefix`, strictly after `after`. */
  private rangeBounds(prefix: string, after: string | undefined): { start?: Buffer; end?: Buffer } {
    return keyRange(prefix, after)
  }

  private notify(changes: readonly RecordChange[]): void {
    for (const change of changes) {
      for (const listener of this.listeners) listener(change)
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the store is closed')
  }
}

/** Records copied per transaction while rebuilding the segment index. */
const SEGMENT_REBUILD_BATCH = 10_000

/** The position of the change log's last entry, read from its database at open. */
function lastLogged(changes: Database<Uint8Array, Uint8Array>): ChangePosition | undefined {
  for (const key of changes.getKeys({ reverse: true, limit: 1 })) return decodePosition(key)
  return undefined
}

function checkpointFromMeta(stored: unknown): ChangePosition | undefined | 'invalid' {
  if (stored === null) return undefined
  if (Array.isArray(stored) && stored.length === 2 && stored.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) {
    return { arrivedMs: stored[0] as number, seq: stored[1] as number }
  }
  return 'invalid'
}

/**
 * Brings the segment index up to every stored key at open and returns the change log position it
 * is complete up to. An index in the current format gets the entries a crash kept from being
 * written (new keys logged after its checkpoint, deferred in memory); one in the format before
 * deferral is complete as it is; any other (or one whose log was trimmed past its checkpoint) is
 * rebuilt from the records.
 */
async function completeSegmentIndex(
  kv: Database<Uint8Array, Uint8Array>,
  db: Database<Uint8Array, Uint8Array>,
  changes: Database<Uint8Array, Uint8Array>,
  index: SegmentIndex,
  meta: Database<unknown, string>,
  mapping: string,
): Promise<ChangePosition | undefined> {
  const scheme = `${mapping} ${SEGMENT_INDEX_FORMAT}`
  const stored = meta.get('segmentScheme')
  const last = lastLogged(changes)
  const recordCheckpoint = async (): Promise<ChangePosition | undefined> => {
    await meta.transaction(() => {
      void meta.put('segmentScheme', scheme)
      void meta.put('segmentIndexThrough', last === undefined ? null : [last.arrivedMs, last.seq])
    })
    await meta.flushed
    return last
  }
  if (stored === scheme) {
    const checkpoint = checkpointFromMeta(meta.get('segmentIndexThrough'))
    const logged = checkpoint === 'invalid' ? undefined : keysLoggedAfter(changes, checkpoint)
    if (logged !== undefined) {
      if (logged.length === 0) return checkpoint as ChangePosition | undefined
      const missing = logged.filter((keyBytes) => {
        if (kv.getBinaryFast(keyBytes) === undefined) return false
        return !index.hasWritten(keyBytes, index.segmentOf(decodeKey(keyBytes)))
      })
      // Nothing lost: the checkpoint stays where it is (no write at start).
      if (missing.length === 0) return checkpoint as ChangePosition | undefined
      await db.transaction(() => {
        for (const keyBytes of missing) index.add(keyBytes, index.segmentOf(decodeKey(keyBytes)))
      })
      return recordCheckpoint()
    }
  } else if (stored === `${mapping} ${SEGMENT_INDEX_FORMAT_COMPLETE}`) {
    return recordCheckpoint()
  }
  await rebuildSegmentIndex(kv, db, index)
  // Recorded last: an interrupted rebuild reruns at the next open.
  return recordCheckpoint()
}

/**
 * Builds the segment index from the kv database: at the first open with an index, or when the
 * key → segment mapping changed. The caller records the scheme afterwards.
 */
async function rebuildSegmentIndex(
  kv: Database<Uint8Array, Uint8Array>,
  db: Database<Uint8Array, Uint8Array>,
  index: SegmentIndex,
): Promise<void> {
  // A new data dir has nothing to index and nothing to clear (its caller's one sync is all).
  if (kv.getKeysCount({ limit: 1 }) === 0 && db.getKeysCount({ limit: 1 }) === 0) return
  await db.clearAsync()
  let batch: { keyBytes: Uint8Array; key: string }[] = []
  const flush = async (): Promise<void> => {
    const staged = batch
    batch = []
    await db.transaction(() => {
      for (const { keyBytes, key } of staged) index.add(keyBytes, index.segmentOf(key))
    })
  }
  for (const key of kv.getKeys({ snapshot: false })) {
    batch.push({ keyBytes: Buffer.from(key), key: decodeKey(key) })
    if (batch.length === SEGMENT_REBUILD_BATCH) await flush()
  }
  await flush()
  await db.flushed
}
