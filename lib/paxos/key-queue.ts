import { UnavailableError } from '../errors.js'

/**
 * Runs the operations on one key one at a time, in arrival order; different keys run in parallel.
 * A key with `maxQueued` operations already waiting refuses the next (503) instead of growing.
 */
export class KeyQueue {
  readonly #tails = new Map<string, { tail: Promise<unknown>; queued: number }>()
  readonly #maxQueued: number

  constructor(maxQueued: number) {
    if (!Number.isSafeInteger(maxQueued) || maxQueued < 1) throw new RangeError(`maxQueued must be a positive integer, got ${maxQueued}`)
    this.#maxQueued = maxQueued
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const entry = this.#tails.get(key) ?? { tail: Promise.resolve(), queued: 0 }
    if (entry.queued >= this.#maxQueued) {
      return Promise.reject(new UnavailableError(`${this.#maxQueued} linearizable operations on key ${JSON.stringify(key)} are already waiting on this node; retry later`))
    }
    entry.queued++
    const result = entry.tail.then(task)
    const tail = result.then(() => undefined, () => undefined).finally(() => {
      entry.queued--
      if (entry.queued === 0 && this.#tails.get(key) === entry) this.#tails.delete(key)
    })
    entry.tail = tail
    this.#tails.set(key, entry)
    return result
  }

  /** Keys with operations running or waiting. */
  get size(): number {
    return this.#tails.size
  }
}
