import { PeerBatcher } from '../transport/peer-batcher.js'
import type { PeerMessage } from '../transport/transport.js'
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
  /** Runs a task after the current turn: when a batch leaves (PeerBatcherOptions.defer). */
  readonly defer: (task: () => void) => void
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
 * The mechanism is lib/transport/peer-batcher.ts, shared with the accept batcher.
 */
export class ReplicaWriteBatcher {
  readonly #options: WriteBatcherOptions
  readonly #batches: PeerBatcher<Batch, PeerMessage>

  constructor(options: WriteBatcherOptions) {
    if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1 || options.maxEntries > MAX_RECORDS_PER_WRITE) {
      throw new RangeError(`maxEntries must be an integer from 1 to ${MAX_RECORDS_PER_WRITE}, got ${options.maxEntries}`)
    }
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${options.maxBytes}`)
    this.#options = options
    this.#batches = new PeerBatcher<Batch, PeerMessage>({
      what: 'replicaWrite',
      maxInFlight: options.maxInFlight,
      nowMs: options.nowMs,
      defer: options.defer,
      send: (peer, batch, timeoutMs) => options.send(peer, { type: 'replicaWrite', body: { entries: batch.entries } }, timeoutMs),
      answered: (peer, batch, reply) => { this.#answer(peer, batch, reply) },
      // Answered as timed out (hinted, where hints are on), never delivered late.
      failed: (_peer, batch, error) => { for (const caller of batch.callers) caller.reject(error) },
    })
  }

  /** Resolves with a replicaWriteReply for exactly `entries`. */
  write(peer: string, entries: readonly WireEntry[], timeoutMs: number): Promise<PeerMessage> {
    return new Promise((resolve, reject) => {
      const bytes = entries.reduce((sum, entry) => sum + entry.key.length + (entry.value?.byteLength ?? 0) + ENTRY_OVERHEAD_BYTES, 0)
      // The batch waits for the most patient caller: a shorter deadline still bounds its own wait
      // in the coordinator, which gives up on the answer, not on the write.
      const batch = this.#batches.batchFor(peer,
        (open) => open.entries.length + entries.length <= this.#options.maxEntries && open.bytes + bytes <= this.#options.maxBytes,
        (deadlineMs) => ({ entries: [], callers: [], bytes: 0, deadlineMs }),
        timeoutMs)
      batch.callers.push({ start: batch.entries.length, count: entries.length, resolve, reject })
      batch.entries.push(...entries)
      batch.bytes += bytes
      this.#batches.flushSoon()
    })
  }

  #answer(peer: string, batch: Batch, reply: PeerMessage): void {
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
  }
}
