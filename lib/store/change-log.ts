import { decodeKey } from './keys.js'
import type { MetaStore } from './meta.js'
import type { OrderedDatabase } from './ordered-database.js'
import type { StoredRecord } from './record.js'
import { decodeRecord } from './record-codec.js'

/**
 * The change log (docs/consistency.md "Watches"): one entry per change the store applied, in the
 * order the changes arrived here, written in the same transaction as the record itself, so a
 * committed record always has its entry and a watcher resuming from the log misses nothing this
 * node holds. Collection by GC (deleteIfVersion) is not a change a reader can see and is not logged.
 *
 * An entry's log key is 16 bytes: the arrival time (ms, forced monotone) and a sequence number
 * (monotone across restarts), both big-endian u64, so the log is ordered by arrival and can be
 * entered at an arrival time. The value is `u16 key length, UTF-8 key, the record as stored`.
 *
 * The horizon: every change that arrived at or after horizonMs is in the log. It starts when the
 * log is first opened and moves forward when the log is trimmed (written before the entries are
 * removed, so after a crash it is never earlier than what the log still covers).
 */

/** Where an entry sits in the log; later entries have greater seq (and arrivedMs ≥). */
export interface ChangePosition {
  readonly arrivedMs: number
  readonly seq: number
}

export interface ChangeEntry {
  readonly position: ChangePosition
  readonly key: string
  readonly record: StoredRecord
}

export interface ChangeLogStats {
  /** Entries retained (counted at open, then kept current). */
  readonly entries: number
  /** Every change that arrived at or after this time (ms) is in the log. */
  readonly horizonMs: number
}

const POSITION_BYTES = 16
const KEY_LENGTH_BYTES = 2

const TWO_TO_32 = 2 ** 32

export function positionKey(position: ChangePosition): Buffer {
  const bytes = Buffer.allocUnsafe(POSITION_BYTES)
  writeUint64(bytes, position.arrivedMs, 0)
  writeUint64(bytes, position.seq, 8)
  return bytes
}

export function decodePosition(bytes: Uint8Array): ChangePosition {
  if (bytes.byteLength !== POSITION_BYTES) throw new Error(`a change log key of ${bytes.byteLength} bytes, expected ${POSITION_BYTES}`)
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return { arrivedMs: readUint64(view, 0), seq: readUint64(view, 8) }
}

/** A safe integer as uint64 big-endian, without a BigInt per write (the split is exact below 2^53). */
function writeUint64(bytes: Buffer, value: number, offset: number): void {
  bytes.writeUInt32BE(Math.floor(value / TWO_TO_32), offset)
  bytes.writeUInt32BE(value >>> 0, offset + 4)
}

function readUint64(bytes: Buffer, offset: number): number {
  return bytes.readUInt32BE(offset) * TWO_TO_32 + bytes.readUInt32BE(offset + 4)
}

export function comparePositions(a: ChangePosition, b: ChangePosition): number {
  return a.seq - b.seq
}

/** The database a ChangeLog lives in, as its store opens it. */
export interface ChangeLogBacking {
  readonly db: OrderedDatabase<Uint8Array, Uint8Array>
  /** The greatest key in `db`, if any (LMDB: a reverse cursor step). */
  lastKey(): Uint8Array | undefined
  /** Entries in `db` (LMDB: its stats). */
  count(): number
  /**
   * Called before a trim to `beforeMs`: the position after which every entry must stay whatever
   * trim is asked (the store replays them after a crash: its deferred segment index entries,
   * kv-store.ts), brought forward first where it can be; null: none need keeping; 'everything':
   * every entry must stay. Absent: none need keeping.
   */
  keepAfter?(beforeMs: number): Promise<ChangePosition | null | 'everything'>
}

export interface ChangeLogReadOptions {
  /** Only keys starting with this ('' = all). */
  readonly prefix: string
  /** Entries returned at most. */
  readonly limit: number
  /** Entries looked at at most, returned or skipped. */
  readonly maxScanned: number
  /** A further filter on keys (e.g. by partition). */
  readonly accept?: (key: string) => boolean
}

export interface ChangeLogPage {
  readonly entries: ChangeEntry[]
  /** The last entry looked at (returned or skipped): read on after it. */
  readonly scannedTo: ChangePosition | undefined
  /** True when the read reached the end of the log. */
  readonly exhausted: boolean
}

export class ChangeLog {
  readonly #db: OrderedDatabase<Uint8Array, Uint8Array>
  readonly #keepAfter: (beforeMs: number) => Promise<ChangePosition | null | 'everything'>
  readonly #meta: MetaStore
  #horizonMs: number
  #lastArrivedMs = 0
  #nextSeq = 1
  #entries: number

  /**
   * `backing.db`: the log's own binary database in the store's environment, with its last key
   * and entry count read the cheap way the database offers; `meta`: where the horizon is kept.
   * `storeIsEmpty`: the store holds no record (a log opened for the first time on a store with
   * records covers changes from now on only).
   */
  constructor(backing: ChangeLogBacking, meta: MetaStore, nowMs: () => number, storeIsEmpty: boolean) {
    this.#db = backing.db
    this.#keepAfter = backing.keepAfter === undefined ? async () => null : (beforeMs) => (backing.keepAfter as (ms: number) => Promise<ChangePosition | null | 'everything'>)(beforeMs)
    this.#meta = meta
    const lastKey = backing.lastKey()
    if (lastKey !== undefined) {
      const last = decodePosition(lastKey)
      this.#lastArrivedMs = last.arrivedMs
      this.#nextSeq = last.seq + 1
    }
    this.#entries = backing.count()
    const stored = meta.read('changeLogHorizonMs')
    if (typeof stored === 'number') {
      this.#horizonMs = stored
    } else {
      // A new store's log holds every change it ever applied; a store that held records before
      // it had a log (an upgrade) covers changes from now on. Not yet durable: a crash before it
      // lands makes the next open decide again, with records by then.
      this.#horizonMs = storeIsEmpty ? 0 : nowMs()
      const horizonMs = this.#horizonMs
      void meta.update('changeLogHorizonMs', (current) => typeof current === 'number' ? current : horizonMs).catch(() => undefined)
    }
  }

  /**
   * Stages one entry inside the caller's store transaction (every write of the log goes with
   * the record it describes). `encodedRecord` is the record as the store keeps it.
   */
  stage(keyBytes: Uint8Array, encodedRecord: Uint8Array, arrivedMs: number): ChangePosition {
    const position = { arrivedMs: Math.max(this.#lastArrivedMs, arrivedMs), seq: this.#nextSeq++ }
    this.#lastArrivedMs = position.arrivedMs
    const value = Buffer.allocUnsafe(KEY_LENGTH_BYTES + keyBytes.byteLength + encodedRecord.byteLength)
    value.writeUInt16BE(keyBytes.byteLength, 0)
    value.set(keyBytes, KEY_LENGTH_BYTES)
    value.set(encodedRecord, KEY_LENGTH_BYTES + keyBytes.byteLength)
    void this.#db.put(positionKey(position), value)
    this.#entries++
    return position
  }

  /** The position of the last entry (undefined while the log has none since it was opened). */
  last(): ChangePosition | undefined {
    return this.#nextSeq === 1 ? undefined : { arrivedMs: this.#lastArrivedMs, seq: this.#nextSeq - 1 }
  }

  /**
   * True when entries after `position` may have been trimmed: reading on after it would skip
   * them unseen. (Sequence numbers are consecutive; a gap left by a failed transaction reads as a
   * loss, which errs on the safe side.)
   */
  trimmedAfter(position: ChangePosition): boolean {
    for (const key of this.#db.getKeys({ limit: 1 })) return decodePosition(key).seq > position.seq + 1
    // An empty log lost everything up to its last sequence number.
    return position.seq + 1 < this.#nextSeq
  }

  get horizonMs(): number {
    return this.#horizonMs
  }

  stats(): ChangeLogStats {
    return { entries: this.#entries, horizonMs: this.#horizonMs }
  }

  /**
   * Entries in arrival order: after `after` (exclusive) or, without it, from arrival time
   * `fromMs` on; at most `limit`, and for keys starting with `prefix` only (entries skipped for
   * the prefix count against `maxScanned`, so one call never walks the whole log).
   */
  read(from: { readonly after: ChangePosition } | { readonly fromMs: number }, options: ChangeLogReadOptions): ChangeLogPage {
    const start = 'after' in from
      ? positionKey({ arrivedMs: from.after.arrivedMs, seq: from.after.seq + 1 })
      : positionKey({ arrivedMs: Math.max(0, from.fromMs), seq: 0 })
    const prefixBytes = options.prefix === '' ? undefined : Buffer.from(options.prefix, 'utf8')
    const entries: ChangeEntry[] = []
    let scanned = 0
    let scannedTo: ChangePosition | undefined
    let exhausted = true
    for (const { key, value } of this.#db.getRange({ start, snapshot: false })) {
      if (entries.length >= options.limit || scanned >= options.maxScanned) {
        exhausted = false
        break
      }
      scanned++
      const position = decodePosition(key)
      scannedTo = position
      const keyLength = readUInt16(value)
      const keyBytes = value.subarray(KEY_LENGTH_BYTES, KEY_LENGTH_BYTES + keyLength)
      if (prefixBytes !== undefined && !startsWith(keyBytes, prefixBytes)) continue
      const keyText = decodeKey(keyBytes)
      if (options.accept !== undefined && !options.accept(keyText)) continue
      entries.push({ position, key: keyText, record: decodeRecord(value.subarray(KEY_LENGTH_BYTES + keyLength), keyText) })
    }
    return { entries, scannedTo, exhausted }
  }

  /**
   * Removes up to `maxEntries` of the entries that arrived before `beforeMs`, oldest first, after
   * moving the horizon to `beforeMs`; resolves with the count removed (fewer than maxEntries:
   * nothing older is left). Entries the backing keeps (keepAfter) stay, and the cut with them.
   */
  async trim(beforeMsAsked: number, maxEntries: number): Promise<number> {
    const keep = await this.#keepAfter(beforeMsAsked)
    if (keep === 'everything') return 0
    let beforeMs = beforeMsAsked
    let end = positionKey({ arrivedMs: beforeMs, seq: 0 })
    if (keep !== null) {
      const kept = positionKey({ arrivedMs: keep.arrivedMs, seq: keep.seq + 1 })
      if (Buffer.compare(kept, end) < 0) {
        // Cut right after the kept position: what arrived from the next ms on is all still here.
        end = kept
        beforeMs = keep.arrivedMs + 1
      }
    }
    if (beforeMs > this.#horizonMs) {
      const horizonMs = beforeMs
      this.#horizonMs = await this.#meta.update('changeLogHorizonMs', (current) => Math.max(typeof current === 'number' ? current : 0, horizonMs))
    }
    const keys = [...this.#db.getKeys({ end, limit: maxEntries, snapshot: false })].map((key) => Buffer.from(key))
    if (keys.length === 0) return 0
    await this.#db.transaction(() => {
      for (const key of keys) void this.#db.remove(key)
    })
    this.#entries = Math.max(0, this.#entries - keys.length)
    return keys.length
  }
}

/**
 * The keys (UTF-8) of the entries logged after `after` (undefined: every entry), in log order,
 * or undefined when entries after it may have been trimmed (the log cannot say which keys).
 * Read at open, before any ChangeLog exists.
 */
export function keysLoggedAfter(db: OrderedDatabase<Uint8Array, Uint8Array>, after: ChangePosition | undefined): Uint8Array[] | undefined {
  for (const first of db.getKeys({ limit: 1 })) {
    if (decodePosition(first).seq > (after?.seq ?? 0) + 1) return undefined
  }
  const start = after === undefined ? undefined : positionKey({ arrivedMs: after.arrivedMs, seq: after.seq + 1 })
  const keys: Uint8Array[] = []
  for (const { value } of db.getRange({ ...(start === undefined ? {} : { start }), snapshot: false })) {
    keys.push(Buffer.from(value.subarray(KEY_LENGTH_BYTES, KEY_LENGTH_BYTES + readUInt16(value))))
  }
  return keys
}

function readUInt16(bytes: Uint8Array): number {
  return ((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0)
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.byteLength < prefix.byteLength) return false
  for (let i = 0; i < prefix.byteLength; i++) if (bytes[i] !== prefix[i]) return false
  return true
}
