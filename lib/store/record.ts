import { compareVersions, type Version } from '../clock/version.js'

/**
 * What a replica keeps for one key. A delete is a record too (a tombstone, `value: null`) so
 * that last-write-wins can order it against puts and a stale replica cannot resurrect the key.
 */
export interface StoredRecord {
  /** The value bytes, or null for a tombstone. */
  readonly value: Uint8Array | null
  readonly version: Version
  /** Wall-clock ms after which the record reads as absent; undefined = never expires. */
  readonly expiresAtMs?: number
  /**
   * A value committed through CASPaxos (lib/paxos/): the key is strong. A strong record beats
   * every plain one whatever the versions (compareRecords), so no last-write-wins path (a plain
   * write, read repair, hints, anti-entropy) can put a plain value over a linearizable one.
   */
  readonly strong?: true
}

/**
 * The order every replica keeps records in (apply-if-newer, read repair, scans, anti-entropy):
 * strong records above plain ones, then by version. A total order, so replicas converge on the
 * same record whatever order records reach them in. Committed CASPaxos values carry strictly
 * increasing versions (docs/consistency.md "Linearizable operations"), so among strong records
 * the newest version is the latest committed value.
 */
export function compareRecords(a: StoredRecord, b: StoredRecord): number {
  const strength = (a.strong === true ? 1 : 0) - (b.strong === true ? 1 : 0)
  return strength !== 0 ? strength : compareVersions(a.version, b.version)
}

/**
 * Records that GC may one day remove (tombstones, and records with a TTL once expired): the
 * store keeps the time each arrived, since collection must wait until every replica is known to
 * hold it (lib/antientropy/certificates.ts), which is a matter of when it got here.
 */
export function mayBeCollected(record: StoredRecord): boolean {
  return record.value === null || record.expiresAtMs !== undefined
}

export function isTombstone(record: StoredRecord): boolean {
  return record.value === null
}

/** A record is live when it has a value and has not expired at `nowMs`. */
export function isLive(record: StoredRecord, nowMs: number): boolean {
  return record.value !== null && (record.expiresAtMs === undefined || record.expiresAtMs > nowMs)
}
