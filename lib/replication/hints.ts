import type { OrderedDatabase } from '../store/ordered-database.js'
import { assertPositiveIntegers } from '../assert.js'
import { Packr } from 'msgpackr'
import { hlcWallMs, isNodeId, type NodeId } from '../clock/version.js'
import { MAX_RECORDS_PER_WRITE, type WireEntry } from './messages.js'

/**
 * Hints: writes this node coordinated for a replica it could not reach, kept on disk until the
 * replica is back (sloppy quorum + hinted handoff, Dynamo §4.6).
 *
 * Key: owner id (8 bytes) ‖ stored-at ms (uint64 BE) ‖ sequence (uint32 BE). Keys sort by owner,
 * then age, so one owner's hints are one cheap range, oldest first, and expiry is a range too.
 * Value: the MessagePack array `[HINT_FORMAT, key, hlc, node, value (bin) | nil, expiresAtMs | nil]`.
 *
 * Every hint is kept, even several for the same key and owner: the replica applies them with
 * apply-if-newer, so delivering all of them in any order leaves it with the newest version.
 */

const HINT_FORMAT = 1
const OWNER_BYTES = 8
const STORED_AT_OFFSET = OWNER_BYTES
const SEQUENCE_OFFSET = STORED_AT_OFFSET + 8
export const HINT_KEY_BYTES = SEQUENCE_OFFSET + 4
const SEQUENCE_LIMIT = 2 ** 32
const MAX_OWNER_PREFIX = 0xffff_ffff_ffff_ffffn
/** Hints deleted per transaction by dropExpired, so one call never holds the write lock for long. */
const EXPIRE_BATCH_ENTRIES = 1024

/** copyBuffers: decoded values must not alias a buffer LMDB may reuse. */
const packr = new Packr({ useRecords: false, copyBuffers: true })

export interface HintStoreOptions {
  /** Most bytes (keys + encoded values) of hints kept for all owners together; more are dropped. */
  readonly maxBytes: number
  /** Hints stored longer ago than this are deleted by dropExpired (anti-entropy repairs the rest). */
  readonly windowMs: number
  /** Wall clock in ms; stamps hints and decides their expiry. */
  readonly nowMs: () => number
  /** Told about a stored hint that does not decode; it is deleted instead of delivered. */
  readonly onCorrupt?: (reason: string) => void
}

export interface HintCounts {
  readonly count: number
  /** Stored size: key bytes plus encoded value bytes. */
  readonly bytes: number
}

export interface HintBatch {
  /** Opaque hint ids, in the same order as `entries`; pass them to remove() once acknowledged. */
  readonly ids: Uint8Array[]
  readonly entries: WireEntry[]
}

interface Counter { count: number; bytes: number }

export class HintStore {
  /** Pending hints per owner; kept in step with the database (reserved when add() starts). */
  private readonly counters = new Map<NodeId, Counter>()
  private totalCount = 0
  private totalBytes = 0
  /** Makes keys stored in the same ms unique; starts past every sequence on disk. */
  private sequence = 0

  constructor(private readonly db: OrderedDatabase<Uint8Array, Uint8Array>, private readonly options: HintStoreOptions) {
    assertPositiveIntegers({ maxBytes: options.maxBytes, windowMs: options.windowMs })
    this.rebuildCounters()
  }

  /**
   * Stores a hint for `owner`; resolves once it is committed and flushed to disk, or with
   * 'dropped' (nothing stored) when it would take the store past maxBytes.
   */
  async add(owner: NodeId, entry: WireEntry): Promise<'stored' | 'dropped'> {
    // Aged from the write's own version when that is older than now (a coordinator whose clock
    // ran ahead and was corrected): a hint must never outlive its version by more than the
    // window, or it could carry a value past the grace of a delete already collected.
    const id = this.newId(owner, Math.min(this.options.nowMs(), hlcWallMs(entry.hlc)))
    const value = encodeHint(entry)
    const bytes = id.length + value.length
    if (this.totalBytes + bytes > this.options.maxBytes) return 'dropped'
    // Reserve before the write so concurrent adds cannot overshoot maxBytes together.
    this.count(owner, 1, bytes)
    try {
      await this.db.put(id, value)
      await this.db.flushed
    } catch (error) {
      this.count(owner, -1, -bytes)
      throw error
    }
    return 'stored'
  }

  /** Pending hints for one owner, or for all owners together. */
  pending(owner?: NodeId): HintCounts {
    if (owner === undefined) return { count: this.totalCount, bytes: this.totalBytes }
    const counter = this.counters.get(owner)
    return { count: counter?.count ?? 0, bytes: counter?.bytes ?? 0 }
  }

  /** Owners with pending hints. */
  owners(): NodeId[] {
    return [...this.counters.keys()]
  }

  /**
   * Up to maxEntries of the owner's oldest hints, without removing them. With maxBatchBytes the
   * batch also stops before its encoded values pass that many bytes (it always holds at least one
   * hint, so an oversized one cannot block the owner's queue). Corrupt hints are skipped and deleted.
   */
  take(owner: NodeId, maxEntries: number, maxBatchBytes = Number.POSITIVE_INFINITY): HintBatch {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_RECORDS_PER_WRITE) {
      throw new RangeError(`maxEntries must be an integer from 1 to ${MAX_RECORDS_PER_WRITE}, got ${maxEntries}`)
    }
    const ids: Uint8Array[] = []
    const entries: WireEntry[] = []
    const corrupt: Uint8Array[] = []
    let batchBytes = 0
    for (const { key, value } of this.db.getRange({ ...ownerRange(owner), limit: maxEntries, snapshot: false })) {
      let entry: WireEntry
      try {
        entry = decodeHint(value)
      } catch (error) {
        corrupt.push(Buffer.from(key))
        this.options.onCorrupt?.(`hint for ${owner} does not decode: ${(error as Error).message}`)
        continue
      }
      if (entries.length > 0 && batchBytes + value.length > maxBatchBytes) break
      ids.push(Buffer.from(key))
      entries.push(entry)
      batchBytes += value.length
      if (entries.length === maxEntries) break
    }
    if (corrupt.length > 0) void this.remove(corrupt).catch((error: unknown) => this.options.onCorrupt?.(`deleting corrupt hints failed: ${String(error)}`))
    return { ids, entries }
  }

  /** Deletes hints (ids from take); ids already gone are ignored. Resolves once flushed. */
  async remove(ids: readonly Uint8Array[]): Promise<void> {
    await this.removeCounted(ids)
  }

  /** Deletes every hint stored windowMs or longer ago; returns how many. */
  async dropExpired(): Promise<number> {
    const cutoffMs = this.options.nowMs() - this.options.windowMs
    if (cutoffMs < 0) return 0
    let dropped = 0
    for (const owner of this.owners()) {
      const { start } = ownerRange(owner)
      // Everything of this owner stored at or before cutoffMs.
      const end = hintKey(owner, cutoffMs + 1, 0)
      // Bounded: each pass deletes a full batch or ends the loop, and new hints are never expired.
      for (;;) {
        const ids: Uint8Array[] = []
        for (const key of this.db.getKeys({ start, end, limit: EXPIRE_BATCH_ENTRIES, snapshot: false })) ids.push(Buffer.from(key))
        if (ids.length === 0) break
        dropped += await this.removeCounted(ids)
        if (ids.length < EXPIRE_BATCH_ENTRIES) break
      }
    }
    return dropped
  }

  /** remove(), resolving with how many of the ids were still there. */
  private async removeCounted(ids: readonly Uint8Array[]): Promise<number> {
    if (ids.length === 0) return 0
    const removed = await this.db.transaction(() => this.removeInTransaction(ids))
    await this.db.flushed
    for (const { owner, bytes } of removed) this.count(owner, -1, -bytes)
    return removed.length
  }

  private removeInTransaction(ids: readonly Uint8Array[]): { owner: NodeId; bytes: number }[] {
    const removed: { owner: NodeId; bytes: number }[] = []
    for (const id of ids) {
      const owner = ownerOf(id)
      // Zero-copy read: only the size is needed, to keep the byte counter exact.
      const value = this.db.getBinaryFast(id)
      if (owner === undefined || value === undefined) continue
      removed.push({ owner, bytes: id.length + value.length })
      void this.db.remove(id)
    }
    return removed
  }

  private rebuildCounters(): void {
    let maxSequence = -1
    for (const key of this.db.getKeys({ snapshot: false })) {
      const owner = ownerOf(key)
      const value = this.db.getBinaryFast(key)
      if (owner === undefined || value === undefined) continue
      this.count(owner, 1, key.length + value.length)
      maxSequence = Math.max(maxSequence, Buffer.from(key).readUInt32BE(SEQUENCE_OFFSET))
    }
    this.sequence = (maxSequence + 1) % SEQUENCE_LIMIT
  }

  private newId(owner: NodeId, storedAtMs: number): Buffer {
    if (!isNodeId(owner)) throw new TypeError(`hint owner is not a node id: ${JSON.stringify(owner)}`)
    const id = hintKey(owner, storedAtMs, this.sequence)
    this.sequence = (this.sequence + 1) % SEQUENCE_LIMIT
    return id
  }

  private count(owner: NodeId, count: number, bytes: number): void {
    const counter = this.counters.get(owner) ?? { count: 0, bytes: 0 }
    counter.count += count
    counter.bytes += bytes
    this.totalCount += count
    this.totalBytes += bytes
    if (counter.count === 0) this.counters.delete(owner)
    else this.counters.set(owner, counter)
  }
}

function hintKey(owner: NodeId, storedAtMs: number, sequence: number): Buffer {
  if (!Number.isSafeInteger(storedAtMs) || storedAtMs < 0) throw new RangeError(`hint stored-at must be a ms timestamp, got ${storedAtMs}`)
  const key = Buffer.alloc(HINT_KEY_BYTES)
  key.write(owner, 0, OWNER_BYTES, 'hex')
  key.writeBigUInt64BE(BigInt(storedAtMs), STORED_AT_OFFSET)
  key.writeUInt32BE(sequence, SEQUENCE_OFFSET)
  return key
}

/** All keys of one owner: from owner ‖ 0… up to the next owner's prefix (none after ffff…). */
function ownerRange(owner: NodeId): { start: Buffer; end?: Buffer } {
  const start = hintKey(owner, 0, 0)
  const prefix = start.readBigUInt64BE(0)
  if (prefix === MAX_OWNER_PREFIX) return { start }
  const end = Buffer.alloc(HINT_KEY_BYTES)
  end.writeBigUInt64BE(prefix + 1n, 0)
  return { start, end }
}

function ownerOf(key: Uint8Array): NodeId | undefined {
  if (key.length !== HINT_KEY_BYTES) return undefined
  const owner = Buffer.from(key.subarray(0, OWNER_BYTES)).toString('hex')
  return isNodeId(owner) ? owner : undefined
}

function encodeHint(entry: WireEntry): Buffer {
  return packr.pack([HINT_FORMAT, entry.key, entry.hlc, entry.node, entry.value, entry.expiresAtMs ?? null])
}

function decodeHint(bytes: Uint8Array): WireEntry {
  const decoded: unknown = packr.unpack(bytes)
  if (!Array.isArray(decoded) || decoded.length !== 6) throw new Error('not a 6-element array')
  const [format, key, hlc, node, value, expiresAtMs] = decoded as unknown[]
  if (format !== HINT_FORMAT) throw new Error(`unknown hint format ${String(format)}`)
  if (typeof key !== 'string' || key.length === 0) throw new Error('bad key')
  if (typeof hlc !== 'number' || !Number.isSafeInteger(hlc) || hlc < 0) throw new Error('bad hlc')
  if (!isNodeId(node)) throw new Error('bad node id')
  if (value !== null && !(value instanceof Uint8Array)) throw new Error('value is neither bytes nor nil')
  if (expiresAtMs !== null && (typeof expiresAtMs !== 'number' || !Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0)) throw new Error('bad expiresAtMs')
  return expiresAtMs === null ? { key, value, hlc, node } : { key, value, hlc, node, expiresAtMs }
}
