import { compareVersions, type NodeId, type Version } from '../clock/version.js'
import type { StoredRecord } from '../store/record.js'
import type { Transport } from '../transport/transport.js'
import { fromWire } from '../replication/messages.js'
import { compareBallots, maxBallot, type Ballot } from './ballot.js'
import { decideAccept, decidePrepare } from './acceptor-state.js'
import type { AcceptorStore, UpdateStep } from './acceptor-store.js'
import {
  MAX_REASON_CHARS, PAXOS_ACCEPT, PAXOS_ACCEPT_MANY, PAXOS_ACCEPT_MANY_REPLY, PAXOS_ACCEPTED, PAXOS_PREPARE, PAXOS_PROMISE, promiseToWire,
  type AcceptAnswer, type AcceptBody, type AcceptManyBody, type AcceptManyReplyBody, type CommitNotice, type PrepareBody, type PromiseAnswer,
} from './messages.js'

export interface AcceptorOptions {
  readonly store: AcceptorStore
  /** The key's plain record in this node's store (tombstones included). */
  readonly stored: (key: string) => StoredRecord | undefined
  /**
   * Why this node takes no part in `key`'s consensus for a proposer whose acceptor set is `set`
   * (repairing after a long absence; its own view of the set differs; catching up after the set
   * changed: acceptor-sets.ts), or undefined. A refusal is an explicit "no", so the proposer
   * knows its request did not land here. Asked in the same synchronous run that decides (the
   * store decides at once and only the answer waits for the sync), so no view change falls
   * between the check and the decision (a catch-up responder relies on it).
   */
  readonly refusal: (key: string, set: readonly NodeId[] | undefined) => string | undefined
  /** Merges a proposer's ballot counter into the local clock (ballots are HLC ticks). */
  readonly observeTick: (tick: number) => void
  /**
   * Writes chosen values this acceptor learned from commits (strong records) into its store
   * (the daemon's learn buffer, lib/paxos/learn-buffer.ts; not awaited: the acceptor state holds
   * them durably meanwhile).
   * Absent: commits are all answered as missing.
   */
  readonly learn?: (records: readonly { key: string; record: StoredRecord }[]) => Promise<unknown>
  /** A learned value could not be written to the store. */
  readonly onLearnError?: (error: unknown) => void
}

/** One accept of a batch, as the acceptor takes it. */
export interface AcceptRequest {
  readonly key: string
  readonly ballot: Ballot
  readonly record: StoredRecord
  readonly history: readonly Version[]
  readonly set: readonly NodeId[] | undefined
}

/**
 * A CASPaxos acceptor for every key this node replicates, answering from its durable state
 * (AcceptorStore). Its plain record of the key goes along with a promise when the proposer may
 * need it: no value accepted here, or a committed (strong) record newer than the accepted one.
 */
export class Acceptor {
  readonly #options: AcceptorOptions

  constructor(options: AcceptorOptions) {
    this.#options = options
  }

  async prepare(key: string, ballot: Ballot, set: readonly NodeId[] | undefined): Promise<PromiseAnswer> {
    const refused = this.#options.refusal(key, set)
    if (refused !== undefined) return { ok: false, refused }
    this.#observe(ballot)
    const reply = await this.#options.store.update(key, (state) => decidePrepare(state, ballot))
    if (!reply.ok) return reply
    // The plain record goes along when nothing was accepted here (a key's first change starts
    // from it), and a committed value newer than the accepted one (it reached this node through
    // replication after a placement change it missed the accepts of): see proposer.ts.
    const stored = this.#options.stored(key)
    const useful = stored !== undefined && (reply.accepted === undefined ||
      (stored.strong === true && compareVersions(stored.version, reply.accepted.record.version) > 0))
    return { ok: true, accepted: reply.accepted, stored: useful ? stored : undefined }
  }

  async accept(key: string, ballot: Ballot, record: StoredRecord, history: readonly Version[], set: readonly NodeId[] | undefined): Promise<AcceptAnswer> {
    const refused = this.#options.refusal(key, set)
    if (refused !== undefined) return { ok: false, refused }
    this.#observe(ballot)
    return this.#options.store.update(key, (state) => decideAccept(state, ballot, { ...record, strong: true }, history))
  }

  /**
   * Several accepts (each as accept() would decide it) and commit notices, answered after one
   * journal sync. A commit says `key` was chosen at `ballot`; when that is exactly the ballot this
   * acceptor accepted, the value it accepted with it is the chosen one (a ballot carries one
   * value), and it goes into the store as a strong record, like the proposer's replicaWrite
   * would have put it there. Anything else (a lower ballot: the accept never arrived; a higher
   * one: it was overtaken) is answered as missing, and the proposer writes the value in full.
   * Learning needs no promise and no acceptor-set check: the value is chosen, and any replica
   * may store a chosen value (docs/consistency.md "Linearizable operations").
   */
  async acceptMany(accepts: readonly AcceptRequest[], commits: readonly CommitNotice[]): Promise<{ answers: AcceptAnswer[]; missing: number[] }> {
    const learn = this.#options.learn
    const answers: AcceptAnswer[] = []
    const steps: UpdateStep<AcceptAnswer>[] = []
    const slots: number[] = []
    // Commits in the order the proposer queued them among the accepts (CommitNotice.at).
    const byPosition = [...commits.keys()].sort((a, b) => (commits[a] as CommitNotice).at - (commits[b] as CommitNotice).at)
    let next = 0
    const commitsUpTo = (position: number): void => {
      for (; next < byPosition.length && (commits[byPosition[next] as number] as CommitNotice).at <= position; next++) {
        const { key, ballot } = commits[byPosition[next] as number] as CommitNotice
        steps.push({ key, chosen: ballot })
      }
    }
    accepts.forEach(({ key, ballot, record, history, set }, i) => {
      if (learn !== undefined) commitsUpTo(i)
      const refused = this.#options.refusal(key, set)
      if (refused !== undefined) {
        answers[i] = { ok: false, refused }
        return
      }
      this.#observe(ballot)
      steps.push({
        key,
        decide: (state) => decideAccept(state, ballot, { ...record, strong: true }, history),
        corrupt: (error) => ({ ok: false, refused: error.message.slice(0, MAX_REASON_CHARS) }),
      })
      slots.push(i)
    })
    if (learn !== undefined) commitsUpTo(Number.POSITIVE_INFINITY)
    const { replies, learned, missing } = await this.#options.store.updateMany(steps)
    replies.forEach((reply, j) => { answers[slots[j] as number] = reply })
    if (learn === undefined) return { answers, missing: commits.map((_, i) => i) }
    if (learned.length > 0) {
      // Not awaited: the accepts' answers need only the journal's sync, and a value whose write
      // fails (the store is closing) is still held by this acceptor's state and the other
      // replicas', where anti-entropy and the next prepare find it.
      learn(learned.map(({ key, record }) => ({ key, record }))).catch((error: unknown) => this.#options.onLearnError?.(error))
    }
    // A key's value at a ballot this acceptor no longer holds is superseded by a later value of
    // the key it did learn here (versions grow along a key's history): nothing to write.
    const newest = new Map<string, Ballot>()
    for (const { key, lookup } of learned) {
      const { ballot } = commits[byPosition[lookup] as number] as CommitNotice
      newest.set(key, maxBallot(newest.get(key) ?? ballot, ballot))
    }
    const unlearned = missing.map((j) => byPosition[j] as number).filter((i) => {
      const { key, ballot } = commits[i] as CommitNotice
      const later = newest.get(key)
      return later === undefined || compareBallots(later, ballot) < 0
    })
    return { answers, missing: unlearned }
  }

  /** A paxosAcceptMany as it arrives (from a peer, or from this node's own proposer without a frame). */
  acceptBatch(body: AcceptManyBody): Promise<AcceptManyReplyBody> {
    const requests = body.accepts.map(({ ballot, entry, history, set }) => ({ key: entry.key, ballot, record: fromWire(entry), history, set }))
    return this.acceptMany(requests, body.commits)
  }

  #observe(ballot: Ballot): void {
    // Best effort: a ballot from a clock beyond the skew bound still orders correctly; only our
    // own later ballots would not follow it, which costs a retry, never safety.
    try { this.#options.observeTick(ballot.counter) } catch { /* see above */ }
  }
}

/** Answers the paxos frames of peers with `acceptor`. */
export function registerAcceptorHandlers(transport: Pick<Transport, 'handle'>, acceptor: Acceptor): void {
  transport.handle(PAXOS_PREPARE, async (_from, message) => {
    const { key, ballot, set } = message.body as PrepareBody
    return { type: PAXOS_PROMISE, body: promiseToWire(key, await acceptor.prepare(key, ballot, set)) }
  })
  transport.handle(PAXOS_ACCEPT, async (_from, message) => {
    const { ballot, entry, history, set } = message.body as AcceptBody
    return { type: PAXOS_ACCEPTED, body: { ...await acceptor.accept(entry.key, ballot, fromWire(entry), history, set) } }
  })
  transport.handle(PAXOS_ACCEPT_MANY, async (_from, message) => {
    const body: AcceptManyReplyBody = await acceptor.acceptBatch(message.body as AcceptManyBody)
    return { type: PAXOS_ACCEPT_MANY_REPLY, body }
  })
}
