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

/** Where writeDeferred stopped: pass it to SegmentIndex.written once its transaction committed. */
export type DeferredMark = number

/** Bytes of a deferred entry besides its key: live flag, segment (uint32), key length (uint16). */
const DEFERRED_HEADER_BYTES = 7
const INITIAL_DEFERRED_BYTES = 64 * 1024
const LIVE = 1

/**
 * The deferred entries, appended to one buffer as `live flag ‖ segment ‖ key length ‖ UTF-8 key`:
 * no JavaScript object per entry. Entries live for up to a checkpoint (seconds), long enough to
 * survive the young generation's collections, and an object each made V8 grow it by tens of MiB
 * under a write load (session 4).
 */
class DeferredEntries {
  #bytes = Buffer.allocUnsafeSlow(INITIAL_DEFERRED_BYTES)
  #length = 0
  /** Bytes dropped from the front so far: marks count from the first entry ever appended. */
  #dropped = 0
  #live = 0

  get live(): number {
    return this.#live
  }

  append(segment: number, key: string): void {
    const keyBytes = Buffer.byteLength(key, 'utf8')
    const needed = this.#length + DEFERRED_HEADER_BYTES + keyBytes
    if (needed > this.#bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(needed, 2 * this.#bytes.length))
      this.#bytes.copy(grown, 0, 0, this.#length)
      this.#bytes = grown
    }
    const at = this.#length
    this.#bytes[at] = LIVE
    this.#bytes.writeUInt32BE(segment, at + 1)
    this.#bytes.writeUInt16BE(keyBytes, at + 5)
    this.#bytes.write(key, at + DEFERRED_HEADER_BYTES, keyBytes, 'utf8')
    this.#length = needed
    this.#live++
  }

  /** Calls `visit` with each live entry's segment, key bytes (a view: copy to keep) and offset. */
  forEach(visit: (segment: number, keyBytes: Buffer, offset: number) => void): void {
    for (let at = 0; at < this.#length;) {
      const keyBytes = this.#bytes.readUInt16BE(at + 5)
      const end = at + DEFERRED_HEADER_BYTES + keyBytes
      if (this.#bytes[at] === LIVE) visit(this.#bytes.readUInt32BE(at + 1), this.#bytes.subarray(at + DEFERRED_HEADER_BYTES, end), at)
      at = end
    }
  }

  /** Marks the live entry of (segment, key) dead; false when there is none. */
  kill(segment: number, keyBytes: Uint8Array): boolean {
    let found = -1
    this.forEach((entrySegment, entryKey, offset) => {
      if (found < 0 && entrySegment === segment && entryKey.equals(keyBytes)) found = offset
    })
    if (found < 0) return false
    this.#bytes[found] = 0
    this.#live--
    return true
  }

  /** The mark after the last entry appended so far. */
  mark(): DeferredMark {
    return this.#dropped + this.#length
  }

  /** Drops every entry before `mark` (those appended later stay). */
  dropBefore(mark: DeferredMark): void {
    const drop = Math.min(mark - this.#dropped, this.#length)
    if (drop <= 0) return
    let dead = 0
    for (let at = 0; at < drop;) {
      if (this.#bytes[at] === LIVE) dead++
      at += DEFERRED_HEADER_BYTES + this.#bytes.readUInt16BE(at + 5)
    }
    this.#bytes.copy(this.#bytes, 0, drop, this.#length)
    this.#length -= drop
    this.#dropped += drop
    this.#live -= dead
  }
}

/** Reads of the index; writes happen inside KvStore transactions (see kv-store.ts). */
export class SegmentIndex {
  readonly #scratch = Buffer.allocUnsafe(VERSION_BYTES)
  /** New keys whose entries are not written yet: listed like written ones until written(). */
  readonly #deferred = new DeferredEntries()
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
  defer(key: string, segment: number): void {
    this.#deferred.append(segment, key)
  }

  /** Entries deferred and not written yet. */
  get deferredCount(): number {
    return this.#deferred.live
  }

  /**
   * Stages every deferred entry in the caller's transaction, in segment order (neighbours share
   * their pages; within a segment they do anyway), and returns where it stopped: pass that to
   * written() once the transaction committed. They stay listed until then, so a failed commit
   * loses none.
   */
  writeDeferred(): DeferredMark {
    const staged: Buffer[] = []
    this.#deferred.forEach((segment, keyBytes) => { staged.push(segmentKey(segment, keyBytes)) })
    staged.sort((a, b) => a.readUInt32BE(0) - b.readUInt32BE(0))
    for (const indexKey of staged) void this.db.put(indexKey, NO_VALUE)
    return this.#deferred.mark()
  }

  /** Forgets the deferred entries a committed writeDeferred wrote (later ones stay). */
  written(mark: DeferredMark): void {
    this.#deferred.dropBefore(mark)
  }

  remove(keyBytes: Uint8Array, segment: number): void {
    void this.db.remove(segmentKey(segment, keyBytes))
    this.#deferred.kill(segment, keyBytes)
  }

  /** Every (key, version) of one segment, in key byte order. */
  entries(segment: number): SegmentEntry[] {
    assertSegment(segment)
    const start = Buffer.allocUnsafe(SEGMENT_BYTES)
    start.writeUInt32BE(segment, 0)
    const range = segment === MAX_SEGMENT ? { start } : { start, end: nextSegmentStart(segment) }
    const listed = new Map<string, Uint8Array>()
    for (const key of this.db.getKeys(range)) {
      const keyBytes = Buffer.from(key.subarray(SEGMENT_BYTES))
      listed.set(decodeKey(keyBytes), keyBytes)
    }
    // A deferred entry may be written already (its commit in flight): listed once.
    this.#deferred.forEach((entrySegment, keyBytes) => {
      if (entrySegment === segment) listed.set(decodeKey(keyBytes), Buffer.from(keyBytes))
    })
    const entries: SegmentEntry[] = []
    for (const [key, keyBytes] of [...listed].sort((a, b) => Buffer.compare(a[1], b[1]))) {
      const version = this.versionOf(keyBytes)
      if (version !== undefined) entries.push({ key, version })
    }
    return entries
  }

  /** Every entry in segment order, with its key's version; lazy, no snapshot pinned. */
  *all(): Generator<SegmentEntry & { readonly segment: number }> {
    // The deferred entries, in index order, merged into the walk of the written ones.
    const deferred: Buffer[] = []
    this.#deferred.forEach((segment, keyBytes) => { deferred.push(segmentKey(segment, keyBytes)) })
    deferred.sort(Buffer.compare)
    let next = 0
    let previous: Buffer | undefined
    const listed = (indexKey: Buffer): (SegmentEntry & { readonly segment: number }) | undefined => {
      // The same key deferred twice, or written and still deferred (a commit in flight): once.
      if (previous !== undefined && previous.equals(indexKey)) return undefined
      previous = indexKey
      const keyBytes = indexKey.subarray(SEGMENT_BYTES)
      const version = this.versionOf(keyBytes)
      return version === undefined ? undefined : { segment: readSegment(indexKey), key: decodeKey(keyBytes), version }
    }
    for (const key of this.db.getKeys({ snapshot: false })) {
      for (; next < deferred.length && Buffer.compare(deferred[next] as Buffer, key) <= 0; next++) {
        const found = listed(deferred[next] as Buffer)
        if (found !== undefined) yield found
      }
      const found = listed(Buffer.from(key))
      if (found !== undefined) yield found
    }
    for (; next < deferred.length; next++) {
      const found = listed(deferred[next] as Buffer)
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

  /** Entries, deferred ones included (one written by a commit in flight, or deferred twice after a failed commit, counts twice). */
  count(): number {
    return this.db.getCount() + this.#deferred.live
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
