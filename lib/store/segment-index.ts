import type { OrderedDatabase } from './ordered-database.js'
import { asNodeId, type Version } from '../clock/version.js'
import { decodeKey } from './keys.js'

/**
 * A second LMDB database that orders every record's (key, version) by segment: the Merkle leaf
 * it belongs to (partition × leaves + bucket). The kv database is ordered by key, which is what
 * scans need; anti-entropy needs "every (key, version) in leaf L of partition P" without walking
 * the store, so this index is kept in the same transaction as every kv write (Riak's AAE keeps a
 * separate segment-ordered key store for the same reason).
 *
 * Entry: key = segment (uint32 big-endian) ‖ UTF-8 key; value = hlc (uint64 BE) ‖ node id (8 B).
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
  const bytes = Buffer.allocUnsafe(VERSION_BYTES)
  // hlc < 2^53, so the split into two uint32 halves is exact.
  bytes.writeUInt32BE(Math.floor(version.hlc / 2 ** 32), 0)
  bytes.writeUInt32BE(version.hlc >>> 0, 4)
  bytes.write(version.node, 8, 'hex')
  return bytes
}

export function decodeSegmentVersion(bytes: Uint8Array): Version {
  if (bytes.length !== VERSION_BYTES) throw new RangeError(`a segment index version has ${VERSION_BYTES} bytes, got ${bytes.length}`)
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return { hlc: buffer.readUInt32BE(0) * 2 ** 32 + buffer.readUInt32BE(4), node: asNodeId(buffer.toString('hex', 8, 16)) }
}

/** Reads of the index; writes happen inside KvStore transactions (see kv-store.ts). */
export class SegmentIndex {
  constructor(private readonly db: OrderedDatabase<Uint8Array, Uint8Array>, readonly segmentOf: SegmentOf) {}

  /** Stages the entry of a key in the current transaction. */
  put(keyBytes: Uint8Array, segment: number, version: Version): void {
    void this.db.put(segmentKey(segment, keyBytes), encodeSegmentVersion(version))
  }

  remove(keyBytes: Uint8Array, segment: number): void {
    void this.db.remove(segmentKey(segment, keyBytes))
  }

  /** Every (key, version) of one segment, in key byte order. */
  entries(segment: number): SegmentEntry[] {
    assertSegment(segment)
    const start = Buffer.allocUnsafe(SEGMENT_BYTES)
    start.writeUInt32BE(segment, 0)
    const range = segment === MAX_SEGMENT ? { start } : { start, end: nextSegmentStart(segment) }
    const entries: SegmentEntry[] = []
    for (const { key, value } of this.db.getRange(range)) {
      entries.push({ key: decodeKey(key.subarray(SEGMENT_BYTES)), version: decodeSegmentVersion(value) })
    }
    return entries
  }

  /** Every entry in segment order; lazy, no snapshot pinned. */
  *all(): Generator<SegmentEntry & { readonly segment: number }> {
    for (const { segment, keyBytes, versionBytes } of this.raw()) {
      yield { segment, key: decodeKey(keyBytes), version: decodeSegmentVersion(versionBytes) }
    }
  }

  /**
   * Every entry undecoded (key UTF-8, 16-byte version), for rebuilding trees at start. The bytes
   * are only valid until the next step: use them, do not keep them.
   */
  *raw(): Generator<{ readonly segment: number; readonly keyBytes: Uint8Array; readonly versionBytes: Uint8Array }> {
    for (const { key, value } of this.db.getRange({ snapshot: false })) {
      yield { segment: Buffer.from(key.buffer, key.byteOffset, SEGMENT_BYTES).readUInt32BE(0), keyBytes: key.subarray(SEGMENT_BYTES), versionBytes: value }
    }
  }

  count(): number {
    return this.db.getCount()
  }
}

function nextSegmentStart(segment: number): Buffer {
  const end = Buffer.allocUnsafe(SEGMENT_BYTES)
  end.writeUInt32BE(segment + 1, 0)
  return end
}
