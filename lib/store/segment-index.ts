import type { OrderedDatabase } from './ordered-database.js'
import { asNodeId, type Version } from '../clock/version.js'
import { decodeKey } from './keys.js'

/**
 * A second LMDB database that orders every stored key by segment: the Merkle leaf it belongs to
 * (partition × leaves + bucket). The kv database is ordered by key, which is what scans need;
 * anti-entropy needs "every (key, version) in leaf L of partition P" without walking the store,
 * so this index is kept in the same transaction as the kv writes (Riak's AAE keeps a separate
 * segment-ordered key store for the same reason).
 *
 * Entry: key = segment (uint32 big-endian) ‖ UTF-8 key; value empty. A key's segment never
 * changes, so the entry is written only when a key first appears and removed when the key is
 * removed: a new version of a stored key costs no index write (issue 15). Versions are read from
 * the kv record when the index is listed, which only anti-entropy and the start-up rebuild do.
 *
 * A new key's entry may also be deferred (`defer`): the key waits in memory, listed with the
 * written entries, until its store writes every waiting entry at once, sorted, in a later
 * transaction (writeDeferred). A random insert into the index then dirties a page shared with
 * the other keys of that write instead of a page of its own in every commit (session 4: the
 * index was a fifth of a replica's apply cost for new keys). The store keeps the change log as
 * the deferred entries' write-ahead log (kv-store.ts).
 */
export type SegmentOf = (key: string) => number

export interface SegmentIndexOptions {
  /** The segment of a key: a uint32, a pure function of the key. */
  readonly segmentOf: SegmentOf
  /**
   * Names the key → segment mapping (e.g. partition count and tree shape). When it differs from
   * the one the index was built with, the index is rebuilt from the kv database at open.
   */
  readonly scheme: string
}

export interface SegmentEntry {
  readonly key: string
  readonly version: Version
}

const SEGMENT_BYTES = 4
const VERSION_BYTES = 16
const MAX_SEGMENT = 2 ** 32 - 1

export function assertSegment(segment: number): void {
  if (!Number.isInteger(segment) || segment < 0 || segment > MAX_SEGMENT) throw new RangeError(`segment must be a uint32, got ${segment}`)
}

export function segmentKey(segment: number, keyBytes: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(SEGMENT_BYTES + keyBytes.length)
  bytes.writeUInt32BE(segment, 0)
  bytes.set(keyBytes, SEGMENT_BYTES)
  return bytes
}

export function encodeSegmentVersion(version: Version): Buffer {
  return writeSegmentVersion(version, Buffer.allocUnsafe(VERSION_BYTES))
}

function writeSegmentVersion(version: Version, bytes: Buffer): Buffer {
  // hlc < 2^53, so the split into two uint32 halves is exact.
  bytes.writeUInt32BE(Math.floor(version.hlc / 2 ** 32), 0)
  bytes.writeUInt32BE(version.hlc >>> 0, 4)
  bytes.write(version.node, 8, 'hex')
  return bytes
}

function readSegment(key: Uint8Array): number {
  return Buffer.from(key.buffer, key.byteOffset, SEGMENT_BYTES).readUInt32BE(0)
}

export function decodeSegmentVersion(bytes: Uint8Array): Version {
  if (bytes.length !== VERSION_BYTES) throw new RangeError(`a segment index version has ${VERSION_BYTES} bytes, got ${bytes.length}`)
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return { hlc: buffer.readUInt32BE(0) * 2 ** 32 + buffer.readUInt32BE(4), node: asNodeId(buffer.toString('hex', 8, 16)) }
}

/** The version of the record stored under a key (UTF-8 bytes), or undefined when none is. */
export type VersionOf = (keyBytes: Uint8Array) => Version | undefined

const NO_VALUE = new Uint8Array(0)

/** A new key whose entry is not written yet (see defer). */
export interface DeferredEntry {
  readonly key: string
  readonly keyBytes: Uint8Array
  readonly segment: number
}

/** Reads of the index; writes happen inside KvStore transactions (see kv-store.ts). */
export class SegmentIndex {
  readonly #scratch = Buffer.allocUnsafe(VERSION_BYTES)
  /** Deferred entries by segment, then by key: listed like written ones until writeDeferred. */
  readonly #deferred = new Map<number, Map<string, DeferredEntry>>()
  #deferredCount = 0

  /**
   * `versionOf`: the store's own lookup of a key's current version (the index keeps none).
   * `records`: the store's walk of every key with its version as 16 bytes (as raw() yields
   * them, valid until the next step), in its own order, if it has a cheaper one than a lookup per
   * index entry (raw() uses it).
   */
  constructor(
    private readonly db: OrderedDatabase<Uint8Array, Uint8Array>,
    readonly segmentOf: SegmentOf,
    private readonly versionOf: VersionOf,
    private readonly records?: () => Iterable<{ readonly keyBytes: Uint8Array; readonly key: string; readonly versionBytes: Uint8Array }>,
  ) {}

  /** Stages the entry of a key that was not stored before, in the current transaction. */
  add(keyBytes: Uint8Array, segment: number): void {
    void this.db.put(segmentKey(segment, keyBytes), NO_VALUE)
  }

  /**
   * Notes the entry of a key that was not stored before without writing it: listed at once,
   * written by the next writeDeferred. The caller must be able to write it again after a crash
   * (the store replays its change log, kv-store.ts).
   */
  defer(key: string, keyBytes: Uint8Array, segment: number): void {
    let inSegment = this.#deferred.get(segment)
    if (inSegment === undefined) {
      inSegment = new Map()
      this.#deferred.set(segment, inSegment)
    }
    const size = inSegment.size
    inSegment.set(key, { key, keyBytes, segment })
    if (inSegment.size > size) this.#deferredCount++
  }

  /** Entries deferred and not written yet. */
  get deferredCount(): number {
    return this.#deferredCount
  }

  /**
   * Stages every deferred entry in the caller's transaction, in index order (neighbours share
   * their pages), and returns them: pass them to written() once that transaction committed.
   * They stay listed (and deferred) until then, so a failed commit loses none.
   */
  writeDeferred(): DeferredEntry[] {
    const staged: { readonly entry: DeferredEntry; readonly indexKey: Buffer }[] = []
    for (const inSegment of this.#deferred.values()) {
      for (const entry of inSegment.values()) staged.push({ entry, indexKey: segmentKey(entry.segment, entry.keyBytes) })
    }
    staged.sort((a, b) => Buffer.compare(a.indexKey, b.indexKey))
    for (const { indexKey } of staged) void this.db.put(indexKey, NO_VALUE)
    return staged.map(({ entry }) => entry)
  }

  /** Forgets deferred entries now written (those deferred again or removed since are left alone). */
  written(entries: readonly DeferredEntry[]): void {
    for (const entry of entries) {
      const inSegment = this.#deferred.get(entry.segment)
      if (inSegment === undefined || inSegment.get(entry.key) !== entry) continue
      inSegment.delete(entry.key)
      this.#deferredCount--
      if (inSegment.size === 0) this.#deferred.delete(entry.segment)
    }
  }

  remove(keyBytes: Uint8Array, segment: number): void {
    void this.db.remove(segmentKey(segment, keyBytes))
    const inSegment = this.#deferred.get(segment)
    if (inSegment !== undefined && inSegment.delete(decodeKey(keyBytes))) {
      this.#deferredCount--
      if (inSegment.size === 0) this.#deferred.delete(segment)
    }
  }

  /** Every (key, version) of one segment, in key byte order. */
  entries(segment: number): SegmentEntry[] {
    assertSegment(segment)
    const start = Buffer.allocUnsafe(SEGMENT_BYTES)
    start.writeUInt32BE(segment, 0)
    const range = segment === MAX_SEGMENT ? { start } : { start, end: nextSegmentStart(segment) }
    const deferred = this.#deferred.get(segment)
    const listed: { readonly keyBytes: Uint8Array; readonly key: string }[] = []
    for (const key of this.db.getKeys(range)) {
      const keyBytes = key.subarray(SEGMENT_BYTES)
      const keyText = decodeKey(keyBytes)
      // Written already, but its deferred copy not forgotten yet (a commit in flight).
      if (deferred?.has(keyText) === true) continue
      listed.push({ keyBytes: Buffer.from(keyBytes), key: keyText })
    }
    if (deferred !== undefined) {
      for (const [key, { keyBytes }] of deferred) listed.push({ keyBytes, key })
      listed.sort((a, b) => Buffer.compare(a.keyBytes, b.keyBytes))
    }
    const entries: SegmentEntry[] = []
    for (const { keyBytes, key } of listed) {
      const version = this.versionOf(keyBytes)
      if (version !== undefined) entries.push({ key, version })
    }
    return entries
  }

  /** Every entry in segment order, with its key's version; lazy, no snapshot pinned. */
  *all(): Generator<SegmentEntry & { readonly segment: number }> {
    // The deferred entries, in index order, merged into the walk of the written ones.
    const deferred = [...this.#deferred.values()].flatMap((inSegment) => [...inSegment.values()])
      .map((entry) => ({ entry, indexKey: segmentKey(entry.segment, entry.keyBytes) }))
      .sort((a, b) => Buffer.compare(a.indexKey, b.indexKey))
    let next = 0
    const listed = (segment: number, keyBytes: Uint8Array): (SegmentEntry & { readonly segment: number }) | undefined => {
      const version = this.versionOf(keyBytes)
      return version === undefined ? undefined : { segment, key: decodeKey(keyBytes), version }
    }
    for (const key of this.db.getKeys({ snapshot: false })) {
      for (; next < deferred.length && Buffer.compare((deferred[next] as { indexKey: Buffer }).indexKey, key) <= 0; next++) {
        const { entry, indexKey } = deferred[next] as { entry: DeferredEntry; indexKey: Buffer }
        // An entry both written and still deferred (a commit in flight) is listed once.
        if (Buffer.compare(indexKey, key) === 0) continue
        const found = listed(entry.segment, entry.keyBytes)
        if (found !== undefined) yield found
      }
      const found = listed(readSegment(key), key.subarray(SEGMENT_BYTES))
      if (found !== undefined) yield found
    }
    for (; next < deferred.length; next++) {
      const { entry } = deferred[next] as { entry: DeferredEntry }
      const found = listed(entry.segment, entry.keyBytes)
      if (found !== undefined) yield found
    }
  }

  /**
   * Every entry with its version packed as 16 bytes (hlc uint64 BE ‖ node id), for rebuilding
   * trees at start, in no promised order. The bytes are only valid until the next step: use
   * them, do not keep them.
   */
  *raw(): Generator<{ readonly segment: number; readonly keyBytes: Uint8Array; readonly versionBytes: Uint8Array }> {
    if (this.records !== undefined) {
      // One sequential walk of the records, each key's segment computed: no lookup per entry.
      for (const { keyBytes, key, versionBytes } of this.records()) {
        yield { segment: this.segmentOf(key), keyBytes, versionBytes }
      }
      return
    }
    for (const key of this.db.getKeys({ snapshot: false })) {
      const keyBytes = key.subarray(SEGMENT_BYTES)
      const version = this.versionOf(keyBytes)
      if (version === undefined) continue
      writeSegmentVersion(version, this.#scratch)
      yield { segment: readSegment(key), keyBytes, versionBytes: this.#scratch }
    }
  }

  /** Entries, deferred ones included (a deferred entry written in a commit in flight may count twice). */
  count(): number {
    return this.db.getCount() + this.#deferredCount
  }

  /** True when the index database holds an entry for the key (deferred ones aside). */
  hasWritten(keyBytes: Uint8Array, segment: number): boolean {
    return this.db.getBinaryFast(segmentKey(segment, keyBytes)) !== undefined
  }
}

function nextSegmentStart(segment: number): Buffer {
  const end = Buffer.allocUnsafe(SEGMENT_BYTES)
  end.writeUInt32BE(segment + 1, 0)
  return end
}
