import { compareVersions, type Version } from '../clock/version.js'
import { ChangeLog } from '../store/change-log.js'
import { BadRequestError } from '../errors.js'
import { NodeIdentity } from '../store/identity.js'
import { decodeKey, encodeKey, keyRange } from '../store/keys.js'
import { encodeRecord } from '../store/record-codec.js'
import { MAX_SKIPPED_PER_PAGE, type ApplyOutcome, type ChangeListener, type KeyedRecord, type RawRangeOptions, type RecordChange, type ScanRequest, type StorePage, type StoreStats } from '../store/kv-store.js'
import { MetaStore } from '../store/meta.js'
import { compareRecords, isLive, mayBeCollected, type StoredRecord } from '../store/record.js'
import { SegmentIndex, type SegmentIndexOptions } from '../store/segment-index.js'
import type { Store } from '../store/store.js'
import { MemoryDatabase } from './memory-database.js'
import { MemoryJournal } from './memory-journal.js'

/**
 * What a simulated node's data dir holds: the simulator keeps this object across a crash and
 * opens a new MemoryStore on it at restart. Everything a store call committed is in it.
 */
export interface MemoryStoreState {
  /** UTF-8 key bytes → record. */
  readonly kv: MemoryDatabase<StoredRecord, Uint8Array>
  readonly meta: MemoryDatabase<unknown, string>
  readonly hints: MemoryDatabase<Uint8Array, Uint8Array>
  readonly segments: MemoryDatabase<Uint8Array, Uint8Array>
  /** UTF-8 key bytes → arrival ms (see Store.arrivalMs). */
  readonly arrivals: MemoryDatabase<number, Uint8Array>
  /** The change log (lib/store/change-log.ts). */
  readonly changes: MemoryDatabase<Uint8Array, Uint8Array>
  /** CASPaxos acceptor state (lib/paxos/acceptor-store.ts). */
  readonly paxos: MemoryDatabase<Uint8Array, Uint8Array>
  /** The acceptor journal: a crash keeps only what it synced. */
  readonly paxosJournal: MemoryJournal
}

export function emptyStoreState(): MemoryStoreState {
  return { kv: new MemoryDatabase(), meta: new MemoryDatabase(), hints: new MemoryDatabase(), segments: new MemoryDatabase(), arrivals: new MemoryDatabase(), changes: new MemoryDatabase(), paxos: new MemoryDatabase(), paxosJournal: new MemoryJournal() }
}

function databasesOf(state: MemoryStoreState): MemoryDatabase<unknown, never>[] {
  return Object.values(state).filter((part) => part instanceof MemoryDatabase) as MemoryDatabase<unknown, never>[]
}

/** Bytes a record is counted as in stats(): its key, value and a fixed overhead. */
const RECORD_OVERHEAD_BYTES = 40

/**
 * The Store contract (lib/store/store.ts) in memory, for simulations: last-writer-wins apply,
 * version-checked removal, change events with the key's segment, the segment index, meta,
 * identity and hints, with the same classes KvStore uses for the last four. Records are kept as
 * objects (they are immutable by convention; stored values are copied on the way in).
 */
export class MemoryStore implements Store {
  readonly meta: MetaStore
  readonly identity: NodeIdentity
  readonly hints: MemoryDatabase<Uint8Array, Uint8Array>
  readonly paxos: MemoryDatabase<Uint8Array, Uint8Array>
  readonly paxosJournal: MemoryJournal
  readonly segments: SegmentIndex
  readonly changeLog: ChangeLog
  readonly #state: MemoryStoreState
  readonly #listeners = new Set<ChangeListener>()
  readonly #nowMs: () => number
  readonly #openedAtMs: number
  #closed = false

  /**
   * `nowMs`: the node's (simulated) clock, for arrival times; `journalSyncDelay`: how its acceptor
   * journal's syncs take time (MemoryJournal.syncDelay).
   */
  constructor(state: MemoryStoreState, segments: SegmentIndexOptions, nowMs: () => number, journalSyncDelay?: (done: () => void) => void) {
    this.#state = state
    state.paxosJournal.syncDelay = journalSyncDelay
    this.#nowMs = nowMs
    this.#openedAtMs = nowMs()
    for (const db of databasesOf(state)) db.unfence()
    this.meta = new MetaStore(state.meta)
    this.identity = new NodeIdentity(this.meta)
    this.hints = state.hints
    this.paxos = state.paxos
    this.paxosJournal = state.paxosJournal
    this.segments = new SegmentIndex(state.segments, segments.segmentOf, (keyBytes) => state.kv.get(keyBytes)?.version)
    this.changeLog = new ChangeLog({
      db: state.changes,
      lastKey: () => {
        let last: Uint8Array | undefined
        for (const key of state.changes.getKeys()) last = key
        return last
      },
      count: () => state.changes.size,
    }, this.meta, nowMs, state.kv.size === 0)
  }

  /**
   * The process died: every later write of this store (from modules of the dead node whose
   * promises are still settling) fails, and the state is left as it was committed.
   */
  crash(): void {
    this.#closed = true
    for (const db of databasesOf(this.#state)) db.fence('the node crashed')
    this.#state.paxosJournal.crash()
  }

  async apply(key: string, record: StoredRecord): Promise<ApplyOutcome> {
    const [outcome] = await this.applyMany([{ key, record }])
    if (outcome === undefined) throw new Error('applyMany returned no outcome for one entry')
    return outcome
  }

  async applyMany(entries: readonly KeyedRecord[]): Promise<ApplyOutcome[]> {
    this.#assertOpen()
    // Prepared before deciding, as KvStore does: a bad key fails the call before any write.
    const prepared = entries.map(({ key, record }) => ({ key, keyBytes: encodeKey(key), segment: this.segments.segmentOf(key), record: copyRecord(record) }))
    if (prepared.length === 0) return []
    // Yield like a commit would, so callers never see a synchronous apply.
    await Promise.resolve()
    this.#assertOpen()
    const outcomes: ApplyOutcome[] = []
    const changes: RecordChange[] = []
    for (const { key, keyBytes, segment, record } of prepared) {
      const previous = this.#state.kv.get(keyBytes)
      const applied = previous === undefined || compareRecords(record, previous) > 0
      if (applied) {
        this.#state.kv.putNow(keyBytes, record)
        if (previous === undefined) this.segments.add(keyBytes, segment)
        if (mayBeCollected(record)) this.#state.arrivals.putNow(keyBytes, this.#nowMs())
        else if (previous !== undefined && mayBeCollected(previous)) this.#state.arrivals.removeNow(keyBytes)
        const logged = this.changeLog.stage(keyBytes, encodeRecord(record), this.#nowMs())
        changes.push({ key, previous, current: record, segment, logged })
      }
      outcomes.push(previous === undefined ? { applied } : { applied, previous })
    }
    this.#notify(changes)
    return outcomes
  }

  arrivalMs(key: string): number {
    this.#assertOpen()
    return this.#state.arrivals.get(encodeKey(key)) ?? this.#openedAtMs
  }

  get(key: string): StoredRecord | undefined {
    this.#assertOpen()
    return this.#state.kv.get(encodeKey(key))
  }

  scan({ prefix, after, limit, nowMs }: ScanRequest): StorePage {
    this.#assertOpen()
    if (!Number.isSafeInteger(limit) || limit < 1) throw new BadRequestError(`limit must be a positive integer, got ${limit}`, { param: 'limit' })
    const items: KeyedRecord[] = []
    let skipped = 0
    let lastVisited: string | undefined
    for (const { key, value } of this.#state.kv.getRange(keyRange(prefix, after))) {
      if (items.length === limit || skipped === MAX_SKIPPED_PER_PAGE) return { items, next: lastVisited ?? null }
      const keyText = decodeKey(key)
      lastVisited = keyText
      if (isLive(value, nowMs)) items.push({ key: keyText, record: value })
      else skipped++
    }
    return { items, next: null }
  }

  *rawRange({ prefix = '', after, start, end, limit }: RawRangeOptions = {}): Generator<KeyedRecord> {
    this.#assertOpen()
    const range = { ...keyRange(prefix, after, { ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}) }), ...(limit === undefined ? {} : { limit }) }
    for (const { key, value } of this.#state.kv.getRange(range)) yield { key: decodeKey(key), record: value }
  }

  async deleteIfVersion(candidates: readonly { readonly key: string; readonly version: Version }[]): Promise<boolean[]> {
    this.#assertOpen()
    const prepared = candidates.map(({ key, version }) => ({ key, version, keyBytes: encodeKey(key) }))
    if (prepared.length === 0) return []
    await Promise.resolve()
    this.#assertOpen()
    const changes: RecordChange[] = []
    const removed = prepared.map(({ key, version, keyBytes }) => {
      const record = this.#state.kv.get(keyBytes)
      if (record === undefined || compareVersions(record.version, version) !== 0) return false
      this.#state.kv.removeNow(keyBytes)
      this.#state.arrivals.removeNow(keyBytes)
      const segment = this.segments.segmentOf(key)
      this.segments.remove(keyBytes, segment)
      changes.push({ key, previous: record, current: undefined, segment })
      return true
    })
    this.#notify(changes)
    return removed
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  stats(): StoreStats {
    let sizeBytes = 0
    for (const { key, value } of this.#state.kv.getRange()) sizeBytes += key.length + (value.value?.length ?? 0) + RECORD_OVERHEAD_BYTES
    return { keys: this.#state.kv.size, sizeBytes }
  }

  async close(): Promise<void> {
    this.#closed = true
  }

  #notify(changes: readonly RecordChange[]): void {
    for (const change of changes) {
      for (const listener of this.#listeners) listener(change)
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the store is closed')
  }
}

function copyRecord(record: StoredRecord): StoredRecord {
  return record.value === null ? record : { ...record, value: Uint8Array.prototype.slice.call(record.value) }
}
