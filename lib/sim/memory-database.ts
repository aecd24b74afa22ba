import { compareBytes } from '../store/keys.js'
import type { DatabaseKey, DatabaseRange, OrderedDatabase } from '../store/ordered-database.js'

/** Bytes the shared read buffer keeps beyond the value read, so that its byteLength always differs. */
const FAST_READ_SLACK_BYTES = 64

/**
 * An in-memory OrderedDatabase for simulations: entries kept sorted by key (strings by code
 * unit, bytes by unsigned byte order, as LMDB orders them). Writes apply at once and count as
 * durable at once: the object outlives a simulated crash, so what a node committed survives it.
 * Keys and binary values are copied on the way in, so a caller reusing its buffers changes nothing.
 */
export class MemoryDatabase<V, K extends DatabaseKey> implements OrderedDatabase<V, K> {
  /** Sorted by key. */
  readonly #keys: K[] = []
  readonly #values: V[] = []
  /** Set by the simulator when the node crashes: later writes from its stale modules fail. */
  #fencedReason: string | undefined
  /** getBinaryFast's shared buffer. */
  #readBuffer = Buffer.alloc(4096)

  get size(): number {
    return this.#keys.length
  }

  get flushed(): Promise<boolean> {
    return Promise.resolve(true)
  }

  /** Every later write rejects with `reason` (the node that owned this crashed). */
  fence(reason: string): void {
    this.#fencedReason = reason
  }

  /** Writes are accepted again (a restarted node opens the same state). */
  unfence(): void {
    this.#fencedReason = undefined
  }

  get(key: K): V | undefined {
    const index = this.#find(key)
    return index >= 0 ? this.#values[index] : undefined
  }

  /**
   * As lmdb-js does: the value copied into one shared buffer, reused by the next read, whose
   * `length` is the value's size while its `byteLength` is the whole buffer's. Code that reads
   * `byteLength` (a DataView over it, say) then fails here as it would on LMDB.
   */
  getBinaryFast(key: K): Uint8Array | undefined {
    const value = this.get(key)
    if (!(value instanceof Uint8Array)) return undefined
    if (this.#readBuffer.byteLength < value.byteLength + FAST_READ_SLACK_BYTES) {
      this.#readBuffer = Buffer.alloc(2 * value.byteLength + FAST_READ_SLACK_BYTES)
    }
    this.#readBuffer.set(value)
    Object.defineProperty(this.#readBuffer, 'length', { value: value.byteLength, writable: true, configurable: true })
    return this.#readBuffer
  }

  async put(key: K, value: V): Promise<boolean> {
    this.putNow(key, value)
    return true
  }

  async remove(key: K): Promise<boolean> {
    return this.removeNow(key)
  }

  /** put(), synchronously (inside transaction() callbacks the store itself runs). */
  putNow(key: K, value: V): void {
    this.#assertWritable()
    const stored = copyKey(key)
    const copied = (value instanceof Uint8Array ? Uint8Array.prototype.slice.call(value) : value) as V
    const index = this.#find(stored)
    if (index >= 0) {
      this.#values[index] = copied
      return
    }
    const at = -index - 1
    this.#keys.splice(at, 0, stored)
    this.#values.splice(at, 0, copied)
  }

  removeNow(key: K): boolean {
    this.#assertWritable()
    const index = this.#find(key)
    if (index < 0) return false
    this.#keys.splice(index, 1)
    this.#values.splice(index, 1)
    return true
  }

  *getRange(range: DatabaseRange = {}): Generator<{ key: K; value: V }> {
    let index = range.start === undefined ? 0 : this.#lowerBound(range.start as K)
    const limit = range.limit ?? Infinity
    // Live reads: a step re-finds its place, so writes during the walk neither skip nor repeat keys.
    for (let yielded = 0; yielded < limit; yielded++) {
      const key = this.#keys[index]
      if (key === undefined || (range.end !== undefined && compareKeys(key, range.end as K) >= 0)) return
      yield { key, value: this.#values[index] as V }
      index = this.#upperBound(key)
    }
  }

  *getKeys(range: DatabaseRange = {}): Generator<K> {
    for (const { key } of this.getRange(range)) yield key
  }

  getCount(range: DatabaseRange = {}): number {
    if (range.start === undefined && range.end === undefined && range.limit === undefined) return this.#keys.length
    let count = 0
    for (const _ of this.getRange(range)) count++
    return count
  }

  async transaction<T>(action: () => T): Promise<T> {
    this.#assertWritable()
    return action()
  }

  #assertWritable(): void {
    if (this.#fencedReason !== undefined) throw new Error(this.#fencedReason)
  }

  /** Index of `key`, or -(insertion point) - 1. */
  #find(key: K): number {
    const at = this.#lowerBound(key)
    const found = this.#keys[at]
    return found !== undefined && compareKeys(found, key) === 0 ? at : -at - 1
  }

  /** First index whose key is ≥ `key`. */
  #lowerBound(key: K): number {
    let low = 0
    let high = this.#keys.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (compareKeys(this.#keys[mid] as K, key) < 0) low = mid + 1
      else high = mid
    }
    return low
  }

  /** First index whose key is > `key`. */
  #upperBound(key: K): number {
    let low = 0
    let high = this.#keys.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (compareKeys(this.#keys[mid] as K, key) <= 0) low = mid + 1
      else high = mid
    }
    return low
  }
}

function compareKeys(a: DatabaseKey, b: DatabaseKey): number {
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0
  if (typeof a === 'string' || typeof b === 'string') throw new TypeError('a database mixes string and binary keys')
  return compareBytes(a, b)
}

function copyKey<K extends DatabaseKey>(key: K): K {
  return (typeof key === 'string' ? key : Buffer.from(key)) as K
}
