import { Packr } from 'msgpackr'
import { isNodeId, type NodeId, type Version } from '../clock/version.js'
import { decodeKey, encodeKey, keyAfter } from '../store/keys.js'
import type { OrderedDatabase } from '../store/ordered-database.js'
import type { StoredRecord } from '../store/record.js'
import { compareBallots, type Ballot } from './ballot.js'
import { MAX_HISTORY, mergeStates, type Accepted, type AcceptorState, type Decision } from './acceptor-state.js'

/**
 * The acceptor's durable state, one entry per key in the store's `paxos` database (UTF-8 key
 * bytes → MessagePack `[FORMAT, promisedCounter, promisedNode, acceptedCounter | nil,
 * acceptedNode | nil, hlc | nil, node | nil, value | nil, history: [hlc, node, hlc, node, …]]`). Each change is decided and written
 * in one transaction and is on disk (flushed) before `update` resolves: an acceptor answers only
 * after its promise or accepted value is durable (CASPaxos needs it; a forgotten promise after a
 * crash could let two values be chosen).
 *
 * Entries are never removed: a key once strong stays strong (docs/consistency.md explains why
 * dropping the state is not safe while an old accept may still be in flight).
 */
const FORMAT = 1
const packr = new Packr({ useRecords: false })

export class CorruptAcceptorStateError extends Error {
  constructor(key: string, reason: string) {
    super(`acceptor state for key ${JSON.stringify(key)} is corrupt: ${reason}`)
    this.name = 'CorruptAcceptorStateError'
  }
}

/** A chosen value updateMany found: the `lookup`-th lookup of its steps. */
export interface Learned { readonly key: string; readonly record: StoredRecord; readonly lookup: number }

/** One step of updateMany: decide the key's next state, or look up the value it was chosen with. */
export type UpdateStep<R> =
  | { readonly key: string; readonly decide: (state: AcceptorState | undefined) => Decision<R>; readonly corrupt: (error: CorruptAcceptorStateError) => R }
  | { readonly key: string; readonly chosen: Ballot }

export class AcceptorStore {
  readonly #db: OrderedDatabase<Uint8Array, Uint8Array>

  constructor(db: OrderedDatabase<Uint8Array, Uint8Array>) {
    this.#db = db
  }

  get(key: string): AcceptorState | undefined {
    const bytes = this.#db.get(encodeKey(key))
    return bytes === undefined ? undefined : decodeState(bytes, key)
  }

  /**
   * Reads the key's state, lets `decide` choose the next one, writes it and waits until it is
   * durable; all in one transaction, so concurrent prepares and accepts of a key are serialized.
   */
  async update<R>(key: string, decide: (state: AcceptorState | undefined) => Decision<R>): Promise<R> {
    const keyBytes = encodeKey(key)
    const { reply, changed } = await this.#db.transaction(() => {
      const bytes = this.#db.get(keyBytes)
      const decision = decide(bytes === undefined ? undefined : decodeState(bytes, key))
      if (decision.next !== undefined) void this.#db.put(keyBytes, encodeState(decision.next))
      return { reply: decision.reply, changed: decision.next !== undefined }
    })
    if (changed) await this.#db.flushed
    return reply
  }

  /**
   * Several keys' update()s and lookups in one transaction and one flush (a batch of accepts and
   * commit notices), in the order given, each seeing the changes of the ones before it. A lookup
   * (`chosen`: `key` was chosen at `ballot`) finds the value this acceptor accepted at exactly
   * that ballot — a ballot carries one value, so that is the chosen one — and returns it in
   * `learned`; otherwise its index among the lookups is in `missing`. Order matters: a batch may
   * carry a key's accept at b, the commit of b, then the accept at b + 1. `within`, when given,
   * runs inside the same transaction with what was learned (not called when nothing was), and
   * its result comes back as `within`.
   */
  async updateMany<R, W = undefined>(steps: readonly UpdateStep<R>[], within?: (learned: readonly Learned[]) => W):
    Promise<{ replies: R[]; learned: Learned[]; missing: number[]; within: W | undefined }> {
    const { replies, learned, missing, changed, wrote } = await this.#db.transaction(() => {
      const written = new Map<string, AcceptorState>()
      const replies: R[] = []
      const learned: Learned[] = []
      const missing: number[] = []
      let lookups = 0
      for (const step of steps) {
        if ('decide' in step) {
          let decision: Decision<R>
          try {
            decision = step.decide(written.get(step.key) ?? this.#stateIn(step.key))
          } catch (error) {
            // One key's corrupt state fails that key's step, not its neighbours in the batch.
            if (!(error instanceof CorruptAcceptorStateError)) throw error
            replies.push(step.corrupt(error))
            continue
          }
          if (decision.next !== undefined) {
            written.set(step.key, decision.next)
            void this.#db.put(encodeKey(step.key), encodeState(decision.next))
          }
          replies.push(decision.reply)
        } else {
          let accepted: Accepted | undefined
          try {
            accepted = (written.get(step.key) ?? this.#stateIn(step.key))?.accepted
          } catch (error) {
            if (!(error instanceof CorruptAcceptorStateError)) throw error
          }
          if (accepted !== undefined && compareBallots(accepted.ballot, step.chosen) === 0) learned.push({ key: step.key, record: accepted.record, lookup: lookups })
          else missing.push(lookups)
          lookups++
        }
      }
      // The caller's writes of what was learned, in this transaction (the plain store's records).
      const wrote = within !== undefined && learned.length > 0 ? within(learned) : undefined
      return { replies, learned, missing, changed: written.size > 0 || wrote !== undefined, wrote }
    })
    if (changed) await this.#db.flushed
    return { replies, learned, missing, within: wrote }
  }

  #stateIn(key: string): AcceptorState | undefined {
    const bytes = this.#db.get(encodeKey(key))
    return bytes === undefined ? undefined : decodeState(bytes, key)
  }

  /** Merges another acceptor's state of `key` into this one's (mergeStates), durably; true when it changed anything. */
  merge(key: string, remote: AcceptorState): Promise<boolean> {
    return this.update(key, (state) => mergeStates(state, remote))
  }

  /** Merges many keys' states at once: one transaction, one flush. */
  async mergeMany(states: readonly { key: string; state: AcceptorState }[]): Promise<void> {
    if (states.length === 0) return
    await this.#db.transaction(() => {
      for (const { key, state } of states) {
        const keyBytes = encodeKey(key)
        const bytes = this.#db.get(keyBytes)
        const decision = mergeStates(bytes === undefined ? undefined : decodeState(bytes, key), state)
        if (decision.next !== undefined) void this.#db.put(keyBytes, encodeState(decision.next))
      }
    })
    await this.#db.flushed
  }

  /**
   * Entries after `afterKey` (exclusive; undefined: from the first) whose key `wanted` selects,
   * as stored, until about `maxBytes` or `maxEntries` (and at most 8 × maxEntries keys looked at,
   * so a page never blocks the node long); `next` is the last key looked at when more may follow.
   * It waits for every change decided before the call to be committed first, so the page shows
   * each of them (a catch-up responder relies on it: lib/paxos/catch-up.ts).
   */
  async scan(afterKey: string | undefined, maxBytes: number, maxEntries: number, wanted: (key: string) => boolean):
    Promise<{ entries: { key: string; state: Uint8Array }[]; next: string | undefined }> {
    await this.#db.transaction(() => undefined)
    const start = afterKey === undefined ? undefined : keyAfter(encodeKey(afterKey))
    const entries: { key: string; state: Uint8Array }[] = []
    let bytes = 0
    let last: string | undefined
    let looked = 0
    for (const { key: keyBytes, value } of this.#db.getRange({ ...(start !== undefined ? { start } : {}), snapshot: true })) {
      const key = decodeKey(keyBytes)
      last = key
      if (wanted(key)) {
        // Decoded here so a corrupt entry fails on this node, never at the peer.
        decodeState(value, key)
        entries.push({ key, state: Uint8Array.from(value) })
        bytes += keyBytes.length + value.length
      }
      if (bytes >= maxBytes || entries.length >= maxEntries || ++looked >= 8 * maxEntries) return { entries, next: last }
    }
    return { entries, next: undefined }
  }
}

export function encodeState(state: AcceptorState): Buffer {
  const accepted = state.accepted
  return packr.pack([
    FORMAT, state.promised.counter, state.promised.node,
    accepted?.ballot.counter ?? null, accepted?.ballot.node ?? null,
    accepted?.record.version.hlc ?? null, accepted?.record.version.node ?? null, accepted?.record.value ?? null,
    (accepted?.history ?? []).flatMap((v) => [v.hlc, v.node]),
  ])
}

export function decodeState(bytes: Uint8Array, key: string): AcceptorState {
  let decoded: unknown
  try {
    decoded = packr.unpack(bytes)
  } catch (error) {
    throw new CorruptAcceptorStateError(key, `not MessagePack (${(error as Error).message})`)
  }
  if (!Array.isArray(decoded) || decoded.length !== 9) throw new CorruptAcceptorStateError(key, 'not a 9-element array')
  const [format, pCounter, pNode, aCounter, aNode, hlc, node, value, flatHistory] = decoded as unknown[]
  if (format !== FORMAT) throw new CorruptAcceptorStateError(key, `unknown format ${String(format)}`)
  const promised = ballotOf(pCounter, pNode, key)
  if (aCounter === null) return { promised }
  if (!isTick(hlc) || !isNodeId(node)) throw new CorruptAcceptorStateError(key, 'bad accepted version')
  if (value !== null && !(value instanceof Uint8Array)) throw new CorruptAcceptorStateError(key, 'accepted value is neither bytes nor nil')
  const record: StoredRecord = { value, version: { hlc, node }, strong: true }
  if (!Array.isArray(flatHistory) || flatHistory.length % 2 !== 0 || flatHistory.length > 2 * MAX_HISTORY) throw new CorruptAcceptorStateError(key, 'bad history')
  const history: Version[] = []
  for (let i = 0; i < flatHistory.length; i += 2) {
    const [h, n] = [flatHistory[i] as unknown, flatHistory[i + 1] as unknown]
    if (!isTick(h) || !isNodeId(n)) throw new CorruptAcceptorStateError(key, 'bad history version')
    history.push({ hlc: h, node: n })
  }
  return { promised, accepted: { ballot: ballotOf(aCounter, aNode, key), record, history } }
}

function ballotOf(counter: unknown, node: unknown, key: string): Ballot {
  if (!isTick(counter) || !isNodeId(node)) throw new CorruptAcceptorStateError(key, 'bad ballot')
  return { counter, node: node as NodeId }
}

function isTick(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}
