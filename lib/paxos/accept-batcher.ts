import type { NodeId, Version } from '../clock/version.js'
import type { Clock, TimerHandle } from '../runtime/clock.js'
import type { StoredRecord } from '../store/record.js'
import { toWire } from '../replication/messages.js'
import { PeerBatcher } from '../transport/peer-batcher.js'
import type { Ballot } from './ballot.js'
import {
  MAX_ACCEPTS_PER_BATCH, MAX_COMMITS_PER_BATCH,
  type AcceptAnswer, type AcceptBody, type AcceptManyBody, type AcceptManyReplyBody, type CommitNotice,
} from './messages.js'

export interface AcceptBatcherOptions {
  /** Sends one paxosAcceptMany to an acceptor and resolves with its validated answer. */
  readonly send: (to: NodeId, body: AcceptManyBody, timeoutMs: number) => Promise<AcceptManyReplyBody>
  /** An accept batch is sent once its values reach about this many bytes, well below the frame limit. */
  readonly maxBytes: number
  /** Batches to one acceptor awaiting their answer at once; meanwhile new accepts and commits gather. */
  readonly maxInFlight: number
  /** How long a batch that carries only commits may wait for its answer. */
  readonly commitTimeoutMs: number
  /**
   * How long commits wait for an accept to the same acceptor to ride along with before they
   * leave on their own (0: not at all). Under load an accept always comes; a lone change's
   * commit reaches the other replicas' stores this much later.
   */
  readonly commitLingerMs: number
  readonly clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>
  readonly nowMs: () => number
  /** Runs a task after the current turn: when a batch leaves (PeerBatcherOptions.defer). */
  readonly defer: (task: () => void) => void
  /**
   * A remote acceptor did not learn a chosen value from its commit (it had not accepted exactly
   * that ballot, or the batch did not arrive): the caller writes the value there in full.
   */
  readonly unlearned: (to: NodeId, key: string, record: StoredRecord) => void
}

interface PendingAccept {
  readonly body: AcceptBody
  readonly resolve: (answer: AcceptAnswer) => void
  readonly reject: (error: unknown) => void
}

interface PendingCommit {
  readonly notice: CommitNotice
  /** The chosen value, kept to write it in full should the acceptor not learn it. */
  readonly record: StoredRecord
}

interface Batch {
  readonly accepts: PendingAccept[]
  readonly commits: PendingCommit[]
  bytes: number
  /** nowMs() by which the most patient accept stops waiting; the batch is not sent after it. */
  deadlineMs: number
  /** True once its commits may leave without an accept (commitLingerMs passed, or no linger). */
  lingered: boolean
  lingerTimer: TimerHandle | undefined
}

/** Per-accept overhead for the byte budget (ballot, history, set, field names). */
const ACCEPT_OVERHEAD_BYTES = 512

/**
 * The proposer's side of paxosAcceptMany. The accepts this node sends to one acceptor within an
 * event-loop turn travel as one frame, cost the acceptor one handler call and one journal sync
 * (acceptor-journal.ts), and while maxInFlight batches to that acceptor await their answer the next ones
 * gather (as the replica write batcher does for plain writes, lib/replication/write-batcher.ts;
 * both on lib/transport/peer-batcher.ts).
 *
 * Commits ride along: once a quorum accepted a value, the proposer tells every remote acceptor
 * "key was chosen at ballot" (a key and a ballot, no value) in the next batch to it — together
 * with accepts of this or other keys, which it waits up to commitLingerMs for — and the acceptor
 * moves the value it accepted at that ballot into its store (learn-buffer.ts). That replaces the full strong-record
 * replicaWrite of every committed value (issue 13's benchmark). A commit the acceptor could not
 * learn from (the `missing` of its answer) or whose batch failed goes to `unlearned`, which
 * writes the value in full (and hints it, as before).
 */
export class AcceptBatcher {
  readonly #options: AcceptBatcherOptions
  readonly #batches: PeerBatcher<Batch, AcceptManyReplyBody>

  constructor(options: AcceptBatcherOptions) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${options.maxBytes}`)
    this.#options = options
    this.#batches = new PeerBatcher<Batch, AcceptManyReplyBody>({
      what: 'paxosAcceptMany',
      maxInFlight: options.maxInFlight,
      nowMs: options.nowMs,
      defer: options.defer,
      // A batch leaves when it has an accept, or only commits that lingered long enough.
      ready: (batch) => batch.accepts.length > 0 || batch.lingered,
      send: (to, batch, timeoutMs) => {
        if (batch.lingerTimer !== undefined) options.clock.clearTimeout(batch.lingerTimer)
        return options.send(to as NodeId, { accepts: batch.accepts.map((a) => a.body), commits: batch.commits.map((c) => c.notice) }, timeoutMs)
      },
      answered: (to, batch, reply) => { this.#answer(to as NodeId, batch, reply) },
      // A batch whose deadline passed: its accepts' proposers stopped waiting, and sending them
      // late would only take promises nobody counts. Its commits still need a way there.
      failed: (to, batch, error) => { this.#fail(to as NodeId, batch, error) },
    })
  }

  /**
   * Resolves with `to`'s answer to this accept; rejects when the batch got no answer in `timeoutMs`.
   * `alone` (the proposer runs no other operation): the accept leaves within the call when it is
   * the only one for `to` and nothing is in flight to it (PeerBatcher.added), instead of at the end
   * of the turn. Only the proposer can tell: under load the accepts of a turn's operations are
   * asked for one after another, and the first must not leave without the rest.
   */
  accept(to: NodeId, key: string, ballot: Ballot, record: StoredRecord, history: readonly Version[], set: readonly NodeId[], timeoutMs: number, alone = false): Promise<AcceptAnswer> {
    return new Promise((resolve, reject) => {
      const bytes = key.length + (record.value?.byteLength ?? 0) + ACCEPT_OVERHEAD_BYTES
      const batch = this.#batches.batchFor(to,
        (open) => open.accepts.length < MAX_ACCEPTS_PER_BATCH && open.bytes + bytes <= this.#options.maxBytes,
        (deadlineMs) => this.#open(deadlineMs),
        timeoutMs)
      batch.accepts.push({ body: { ballot, entry: toWire(key, record), history, set }, resolve, reject })
      batch.bytes += bytes
      if (alone) this.#batches.added(to, batch, batch.accepts.length)
      else this.#batches.flushSoon()
    })
  }

  /** Tells `to` that `key` was chosen at `ballot` with `record`, in its next batch. */
  commit(to: NodeId, key: string, ballot: Ballot, record: StoredRecord): void {
    const batch = this.#batches.batchFor(to, (open) => open.commits.length < MAX_COMMITS_PER_BATCH, (deadlineMs) => this.#open(deadlineMs))
    batch.commits.push({ notice: { key, ballot, at: batch.accepts.length }, record })
    if (batch.lingered || batch.accepts.length > 0) this.#batches.flushSoon()
    else if (batch.lingerTimer === undefined) {
      batch.lingerTimer = this.#options.clock.setTimeout(() => {
        batch.lingerTimer = undefined
        batch.lingered = true
        this.#batches.release(to, batch)
      }, this.#options.commitLingerMs)
    }
  }

  /** A new batch waits at least commitTimeoutMs for its answer (its commits set no deadline of their own). */
  #open(deadlineMs: number): Batch {
    return {
      accepts: [], commits: [], bytes: 0, deadlineMs: Math.max(deadlineMs, this.#options.nowMs() + this.#options.commitTimeoutMs),
      lingered: this.#options.commitLingerMs <= 0, lingerTimer: undefined,
    }
  }

  #answer(to: NodeId, batch: Batch, reply: AcceptManyReplyBody): void {
    if (reply.answers.length !== batch.accepts.length) {
      this.#fail(to, batch, new Error(`${to} answered a paxosAcceptMany of ${batch.accepts.length} accepts with ${reply.answers.length} answers`))
      return
    }
    batch.accepts.forEach((accept, i) => accept.resolve(reply.answers[i] as AcceptAnswer))
    for (const i of reply.missing) {
      const commit = batch.commits[i]
      if (commit !== undefined) this.#options.unlearned(to, commit.notice.key, commit.record)
    }
  }

  #fail(to: NodeId, batch: Batch, error: unknown): void {
    if (batch.lingerTimer !== undefined) this.#options.clock.clearTimeout(batch.lingerTimer)
    for (const accept of batch.accepts) accept.reject(error)
    for (const commit of batch.commits) this.#options.unlearned(to, commit.notice.key, commit.record)
  }
}
