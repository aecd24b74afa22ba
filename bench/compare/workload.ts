import { randomBytes } from 'node:crypto'

/** The workload of issue 7, the same for every system. */
export const KEY_BYTES = 16
export const VALUE_BYTES = 100
/** Keys are `k` and a zero-padded number, so the key space must fit the digits. */
export const MAX_KEY_SPACE = 1_000_000
/**
 * A prime above MAX_KEY_SPACE, so `index * KEY_SCATTER_PRIME mod keySpace` visits every key once
 * per pass but not in sorted order: no store gets the easy case of appending to its B-tree.
 */
const KEY_SCATTER_PRIME = 1_000_003
const KEY_DIGITS = KEY_BYTES - 1

/**
 * Keys and values for one system's run. Writes walk the key space; reads pick uniformly among
 * the keys the write phase reached, so every read finds a value when the writes succeeded.
 */
export class Workload {
  readonly keySpace: number
  /** One value for every write: none of the three systems compresses or deduplicates. */
  readonly value: Buffer = randomBytes(VALUE_BYTES)
  #writesIssued = 0

  constructor(keySpace: number) {
    if (!Number.isSafeInteger(keySpace) || keySpace < 1 || keySpace > MAX_KEY_SPACE) {
      throw new RangeError(`keySpace must be an integer from 1 to ${MAX_KEY_SPACE}, got ${keySpace}`)
    }
    this.keySpace = keySpace
  }

  nextWriteKey(): string {
    return this.#key(this.#writesIssued++ % this.keySpace)
  }

  randomReadKey(): string {
    const written = Math.min(this.#writesIssued, this.keySpace)
    if (written === 0) throw new Error('the read phase needs a write phase before it')
    return this.#key(Math.floor(Math.random() * written))
  }

  /** Worker w's own key for the compare-and-set phase (kept apart from the write phase's keys). */
  casKey(worker: number): string {
    return `c${String(worker).padStart(KEY_DIGITS, '0')}`
  }

  #key(slot: number): string {
    const scattered = (slot * KEY_SCATTER_PRIME) % this.keySpace
    return `k${String(scattered).padStart(KEY_DIGITS, '0')}`
  }
}
