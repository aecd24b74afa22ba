import { compareVersions, type NodeId, type Version } from '../clock/version.js'
import type { StoredRecord } from '../store/record.js'
import type { Transport } from '../transport/transport.js'
import { fromWire } from '../replication/messages.js'
import type { Ballot } from './ballot.js'
import { decideAccept, decidePrepare, type AcceptorState, type Decision } from './acceptor-state.js'
import type { AcceptorStore } from './acceptor-store.js'
import {
  PAXOS_ACCEPT, PAXOS_ACCEPTED, PAXOS_PREPARE, PAXOS_PROMISE, promiseToWire,
  type AcceptAnswer, type AcceptBody, type PrepareBody, type PromiseAnswer,
} from './messages.js'

export interface AcceptorOptions {
  readonly store: AcceptorStore
  /** The key's plain record in this node's store (tombstones included). */
  readonly stored: (key: string) => StoredRecord | undefined
  /**
   * Why this node takes no part in `key`'s consensus for a proposer whose acceptor set is `set`
   * (repairing after a long absence; its own view of the set differs; catching up after the set
   * changed: acceptor-sets.ts), or undefined. A refusal is an explicit "no", so the proposer
   * knows its request did not land here. Asked again inside the transaction that decides, so a
   * view that changed while the request waited for it is respected (a catch-up responder
   * relies on it).
   */
  readonly refusal: (key: string, set: readonly NodeId[] | undefined) => string | undefined
  /** Merges a proposer's ballot counter into the local clock (ballots are HLC ticks). */
  readonly observeTick: (tick: number) => void
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
    const reply = await this.#options.store.update(key, this.#unlessRefused(key, set, (state) => decidePrepare(state, ballot)))
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
    return this.#options.store.update(key, this.#unlessRefused(key, set, (state) => decideAccept(state, ballot, { ...record, strong: true }, history)))
  }

  #unlessRefused<R>(key: string, set: readonly NodeId[] | undefined, decide: (state: AcceptorState | undefined) => Decision<R>): (state: AcceptorState | undefined) => Decision<R | { ok: false; refused: string }> {
    return (state) => {
      const refused = this.#options.refusal(key, set)
      return refused !== undefined ? { reply: { ok: false, refused } } : decide(state)
    }
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
}
