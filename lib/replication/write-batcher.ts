import { TransportError, type PeerMessage } from '../transport/transport.js'
import { MAX_RECORDS_PER_WRITE, type ReplicaWriteReplyBody, type WireEntry } from './messages.js'

export interface WriteBatcherOptions {
  /** Sends one replicaWrite to a peer and resolves with its answer (the transport's request). */
  readonly send: (peer: string, message: PeerMessage, timeoutMs: number) => Promise<PeerMessage>
  /** Most records in one batch (≤ MAX_RECORDS_PER_WRITE). */
  readonly maxEntries: number
  /** A batch is sent once its records reach about this many bytes, well below the frame limit. */
  readonly maxBytes: number
  /**
   * Batches to one peer awaiting their answer at once; while that many are out, new records
   * gather into the next batch, which leaves when an answer comes back (or it is full).
   */
  readonly maxInFlight: number
  /** The injected clock's now, in ms: a batch that waited behind answers keeps its callers' deadline. */
  readonly nowMs: () => number
}

interface Caller {
  readonly start: number
  readonly count: number
  readonly resolve: (reply: PeerMessage) => void
  readonly reject: (error: unknown) => void
}

interface Batch {
  readonly entries: WireEntry[]
  readonly callers: Caller[]
  bytes: number
  /** nowMs() by which the most patient caller stops waiting; the batch is not sent after it. */
  deadlineMs: number
}

/** Per-record overhead for the byte budget (field names, version, framing). */
const ENTRY_OVERHEAD_BYTES = 64

/**
 * Folds the replica writes a coordinator sends to one peer within an event-loop turn into one
 * `replicaWrite`: one frame, one request slot, one handler call and one LMDB transaction on the
 * replica instead of one each per client write. Each caller still gets its own answer (its slice
 * of `applied`), or the batch's error. All records of a batch come from this node, so the
 * replica's clock-skew check accepts or refuses them together, as it would one by one.
 *
 * Under load the batches grow by themselves (issue 15): at most maxInFlight batches per peer
 * await their answer, and the records of the turns in between gather into the next one, as
 * Nagle's algorithm and group commit do. An idle peer's batch leaves at the end of the turn; a
 * busy one costs the replica one message, handler call and transaction per round trip instead of
 * one per turn. A record's wait in the queue counts against its deadline (replication.timeoutMs).
 */
export class ReplicaWriteBatcher {
  readonly #options: WriteBatcherOptions
  readonly #pending = new Map<string, Batch>()
  /** Batches sent to each peer and not answered yet. */
  readonly #inFlight = new Map<string, number>()
  #flushScheduled = false

  constructor(options: WriteBatcherOptions) {
    if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1 || options.maxEntries > MAX_RECORDS_PER_WRITE) {
      throw new RangeError(`maxEntries must be an integer from 1 to ${MAX_RECORDS_PER_WRITE}, got ${options.maxEntries}`)
    }
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${options.maxBytes}`)
    if (!Number.isSafeInteger(options.maxInFlight) || options.maxInFlight < 1) throw new RangeError(`maxInFlight must be a positive integer, got ${options.maxInFlight}`)
    this.#options = options
  }

  /** Resolves with a replicaWriteReply for exactly `entries`. */
  write(peer: string, entries: readonly WireEntry[], timeoutMs: number): Promise<PeerMessage> {
    return new Promise((resolve, reject) => {
      let batch = this.#pending.get(peer)
      const bytes = entries.reduce((sum, entry) => sum + entry.key.length + (entry.value?.byteLength ?? 0) + ENTRY_OVERHEAD_BYTES, 0)
      if (batch !== undefined && (batch.entries.length + entries.length > this.#options.maxEntries || batch.bytes + bytes > this.#options.maxBytes)) {
        this.#send(peer, batch)
        batch = undefined
      }
      const deadlineMs = this.#options.nowMs() + timeoutMs
      if (batch === undefined) {
        batch = { entries: [], callers: [], bytes: 0, deadlineMs }
        this.#pending.set(peer, batch)
      }
      batch.callers.push({ start: batch.entries.length, count: entries.length, resolve, reject })
      batch.entries.push(...entries)
      batch.bytes += bytes
      // The batch waits for the most patient caller: a shorter deadline still bounds its own wait
      // in the coordinator, which gives up on the answer, not on the write.
      batch.deadlineMs = Math.max(batch.deadlineMs, deadlineMs)
      this.#scheduleFlush()
    })
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    // setImmediate, not a microtask: it runs after every request this turn of the poll phase read.
    setImmediate(() => {
      this.#flushScheduled = false
      for (const [peer, batch] of this.#pending) {
        // A peer with its answers outstanding gets this batch when one comes back (#answered).
        if ((this.#inFlight.get(peer) ?? 0) < this.#options.maxInFlight) this.#send(peer, batch)
      }
    })
  }

  #answered(peer: string): void {
    const left = (this.#inFlight.get(peer) ?? 1) - 1
    if (left > 0) this.#inFlight.set(peer, left)
    else this.#inFlight.delete(peer)
    const waiting = this.#pending.get(peer)
    if (waiting !== undefined) this.#send(peer, waiting)
  }

  #send(peer: string, batch: Batch): void {
    if (this.#pending.get(peer) === batch) this.#pending.delete(peer)
    // A batch that waited behind unanswered ones past its callers' deadline is not sent: its
    // writes are answered as timed out (hinted, where hints are on), never delivered late.
    const remainingMs = batch.deadlineMs - this.#options.nowMs()
    if (remainingMs <= 0) {
      const error = new TransportError(`replicaWrite to ${peer}: the deadline passed while earlier batches awaited their answer`, 'timeout')
      for (const caller of batch.callers) caller.reject(error)
      return
    }
    this.#inFlight.set(peer, (this.#inFlight.get(peer) ?? 0) + 1)
    const sent = this.#options.send(peer, { type: 'replicaWrite', body: { entries: batch.entries } }, remainingMs)
    sent.then(() => this.#answered(peer), () => this.#answered(peer))
    sent.then(
      (reply) => {
        const applied = reply.type === 'replicaWriteReply' ? (reply.body as ReplicaWriteReplyBody).applied : undefined
        if (applied === undefined || applied.length !== batch.entries.length) {
          const error = new Error(`${peer} answered a replicaWrite of ${batch.entries.length} records with ${reply.type}${applied === undefined ? '' : ` of ${applied.length}`}`)
          for (const caller of batch.callers) caller.reject(error)
          return
        }
        const strong = (reply.body as ReplicaWriteReplyBody).strong ?? []
        for (const caller of batch.callers) {
          const refused = strong.filter((i) => i >= caller.start && i < caller.start + caller.count).map((i) => i - caller.start)
          const body: ReplicaWriteReplyBody = { applied: applied.slice(caller.start, caller.start + caller.count), ...(refused.length > 0 ? { strong: refused } : {}) }
          caller.resolve({ type: 'replicaWriteReply', body })
        }
      },
      (error: unknown) => { for (const caller of batch.callers) caller.reject(error) },
    )
  }
}
