import type { Version } from '../clock/version.js'
import type { ConsistencyLevel } from './consistency.js'

/**
 * What the client API asks of the cluster. The coordinator implements it; lib/api knows
 * nothing else about replication.
 */
export interface WriteOptions {
  readonly w?: ConsistencyLevel
  /** Seconds until the value expires (1 … MAX_TTL_SECONDS, checked by lib/api); undefined = never. Ignored for deletes. */
  readonly ttlSeconds?: number
}

export interface ReadOptions {
  readonly r?: ConsistencyLevel
}

export interface WriteResult {
  readonly key: string
  readonly version: Version
  /** Replicas that made the write durable before the answer. */
  readonly acks: number
  /** Acks the consistency level needed. */
  readonly needed: number
}

export interface ReadResult {
  readonly key: string
  readonly value: Uint8Array
  readonly version: Version
  readonly expiresAtMs?: number
}

export interface ScanOptions {
  /** Only keys starting with this prefix ('' = all). */
  readonly prefix: string
  /** Only keys strictly after this one (paging cursor); undefined = from the start. */
  readonly after?: string
  /** Page size; the coordinator clamps it to the configured maximum. */
  readonly limit: number
  /** Only keys ≥ start (inclusive) and < end (exclusive), in UTF-8 byte order; with the prefix. */
  readonly start?: string
  readonly end?: string
  /** Only this node's own records: no other replica is asked (a per-node dump for debugging). */
  readonly local?: boolean
}

export interface ScanItem {
  readonly key: string
  readonly value: Uint8Array
  readonly version: Version
}

export interface ScanPage {
  readonly items: readonly ScanItem[]
  /** Cursor for the next page (pass as `after`), or null when this page is the last. */
  readonly next: string | null
}

export type BatchOperation =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array; readonly ttlSeconds?: number }
  | { readonly op: 'delete'; readonly key: string }

export interface KvService {
  put(key: string, value: Uint8Array, options: WriteOptions): Promise<WriteResult>
  delete(key: string, options: WriteOptions): Promise<WriteResult>
  /** Undefined when the key is absent, deleted or expired. */
  get(key: string, options: ReadOptions): Promise<ReadResult | undefined>
  scan(options: ScanOptions): Promise<ScanPage>
  /** Applies every operation; answers once each met the write level (all-or-error per op). */
  batch(operations: readonly BatchOperation[], options: WriteOptions): Promise<WriteResult[]>
}
