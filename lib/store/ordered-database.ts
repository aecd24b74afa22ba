/**
 * The part of an lmdb `Database` that hearsay's small stores (meta, hints, the segment index)
 * use. lmdb's Database satisfies it; lib/sim/memory-database.ts is a Map-backed twin for
 * simulations. Keys order like LMDB's: strings by code unit, bytes by unsigned byte order.
 */
export type DatabaseKey = string | Uint8Array

export interface DatabaseRange {
  /** First key included. */
  readonly start?: DatabaseKey
  /** First key excluded. */
  readonly end?: DatabaseKey
  readonly limit?: number
  /** LMDB: pin a read snapshot for the walk; the memory twin always reads live. */
  readonly snapshot?: boolean
}

export interface OrderedDatabase<V, K extends DatabaseKey> {
  get(key: K): V | undefined
  /**
   * The value's bytes (binary databases), valid until the next read: lmdb-js's shared read
   * buffer, whose `length` is the value's size but whose `byteLength` is the whole buffer's. Read
   * it up to `length` (or `subarray(0, length)` before a DataView); the memory twin does the same.
   */
  getBinaryFast(key: K): Uint8Array | undefined
  /** Staged in the current transaction, or written in the next batch outside one. */
  put(key: K, value: V): Promise<boolean>
  remove(key: K): Promise<boolean>
  getRange(range?: DatabaseRange): Iterable<{ key: K; value: V }>
  getKeys(range?: DatabaseRange): Iterable<K>
  getCount(range?: DatabaseRange): number
  /** Runs `action` atomically; resolves once committed. */
  transaction<T>(action: () => T): Promise<T>
  /** Resolves once every write before it is durable. */
  readonly flushed: Promise<boolean>
}
