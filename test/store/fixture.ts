import type { Test } from 'tap'
import { asNodeId, type NodeId } from '../../lib/clock/version.js'
import { KvStore } from '../../lib/store/kv-store.js'
import type { StoredRecord } from '../../lib/store/record.js'

/** Small enough for tests; lmdb-js grows the map when needed. */
export const TEST_MAP_SIZE_BYTES = 16 * 1024 * 1024
export const NODE_A: NodeId = asNodeId('aaaaaaaaaaaaaaaa')
export const NODE_B: NodeId = asNodeId('bbbbbbbbbbbbbbbb')
/** A wall-clock ms reading for records; hlc ticks are this × 1000 plus a counter. */
export const WALL_MS = 1_717_000_000_000

export function hlcAt(wallMs: number, logical = 0): number {
  return wallMs * 1000 + logical
}

export function put(value: string | Uint8Array, hlc: number, node: NodeId = NODE_A, expiresAtMs?: number): StoredRecord {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value
  const version = { hlc, node }
  return expiresAtMs === undefined ? { value: bytes, version } : { value: bytes, version, expiresAtMs }
}

export function tombstone(hlc: number, node: NodeId = NODE_A): StoredRecord {
  return { value: null, version: { hlc, node } }
}

/** Opens a store in a fresh test dir, closed at teardown. */
export async function openTestStore(t: Test, dataDir: string = t.testdir()): Promise<KvStore> {
  const store = await KvStore.open({ dataDir, mapSizeBytes: TEST_MAP_SIZE_BYTES })
  t.teardown(() => store.close())
  return store
}

export function text(record: StoredRecord | undefined): string | null | undefined {
  if (record === undefined) return undefined
  return record.value === null ? null : Buffer.from(record.value).toString('utf8')
}
