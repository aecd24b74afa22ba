import type { Version } from '../clock/version.js'
import type { ChangePosition } from '../store/change-log.js'
import type { StoredRecord } from '../store/record.js'

/** One change as a watcher receives it: the record a replica applied. */
export interface WatchEvent {
  readonly key: string
  /** The value bytes, or null for a delete (tombstone). */
  readonly value: Uint8Array | null
  readonly version: Version
  /** Wall-clock ms after which the value reads as absent (a put with a TTL). */
  readonly expiresAtMs?: number
}

/** A local change with its place in this node's change log (for deduplicating replay and live). */
export interface LoggedEvent {
  readonly event: WatchEvent
  readonly position: ChangePosition | undefined
}

/** Bytes an event is counted as in a watcher's buffer: key, value and encoding overhead. */
export const EVENT_OVERHEAD_BYTES = 128

export function eventBytes(event: WatchEvent): number {
  // Base64 in SSE: four bytes out for three in; the bound counts what a sink may hold.
  return event.key.length * 3 + Math.ceil((event.value?.byteLength ?? 0) * 4 / 3) + EVENT_OVERHEAD_BYTES
}

export function eventOf(key: string, record: StoredRecord): WatchEvent {
  return record.expiresAtMs === undefined
    ? { key, value: record.value, version: record.version }
    : { key, value: record.value, version: record.version, expiresAtMs: record.expiresAtMs }
}
