import type { Clock, TimerHandle } from '../runtime/clock.js'
import type { StoredRecord } from '../store/record.js'

export interface LearnBufferOptions {
  /** Writes records into the store (its applyMany): one transaction and flush per call. */
  readonly write: (records: readonly { key: string; record: StoredRecord }[]) => Promise<unknown>
  /** How long the first record waits for others to share its write. */
  readonly lingerMs: number
  /** A write goes at once with this many records. */
  readonly maxRecords: number
  readonly clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>
}

/**
 * The committed values on their way to this node's store — those its acceptor learned from commit
 * notices and those its own proposer committed — gathered for up to lingerMs into one write. They
 * need no write of their own to be safe: from its accept on, each value is held durably in the
 * journals of a quorum of its acceptors, and a linearizable read finds it there. The store's copy
 * is for plain reads, anti-entropy and the strong-key refusal of plain writes, all of which
 * already allow a committed value to arrive a little later (the commit notices to other replicas
 * linger too: docs/consistency.md). What it saves is an LMDB commit per lone change on every
 * replica — two syncs and five thread hand-offs each, most of a lone CAS's CPU once the accept
 * itself no longer went through LMDB (docs/benchmarks.md "Session 6").
 */
export class LearnBuffer {
  readonly #options: LearnBufferOptions
  #records: { key: string; record: StoredRecord }[] = []
  #waiters: { resolve: () => void; reject: (error: unknown) => void }[] = []
  #timer: TimerHandle | undefined

  constructor(options: LearnBufferOptions) {
    if (!Number.isSafeInteger(options.maxRecords) || options.maxRecords < 1) throw new RangeError(`maxRecords must be a positive integer, got ${options.maxRecords}`)
    this.#options = options
  }

  /** Queues records for the next write; resolves once it is done, rejects when it failed. */
  add(records: readonly { key: string; record: StoredRecord }[]): Promise<void> {
    if (records.length === 0) return Promise.resolve()
    this.#records.push(...records)
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
    if (this.#records.length >= this.#options.maxRecords) this.flush()
    else this.#timer ??= this.#options.clock.setTimeout(() => {
      this.#timer = undefined
      this.flush()
    }, this.#options.lingerMs)
    return done
  }

  /** Writes what is gathered now (at shutdown, before the store closes); resolves when written. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      this.#options.clock.clearTimeout(this.#timer)
      this.#timer = undefined
    }
    const records = this.#records
    const waiters = this.#waiters
    this.#records = []
    this.#waiters = []
    if (records.length === 0) return Promise.resolve()
    return this.#options.write(records).then(
      () => { for (const waiter of waiters) waiter.resolve() },
      (error: unknown) => { for (const waiter of waiters) waiter.reject(error) },
    )
  }
}
