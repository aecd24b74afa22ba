import { Packr } from 'msgpackr'
import { isNodeId, type NodeId, type Version } from '../clock/version.js'
import { nodeIdAt, nodeIdBytes } from '../codec/node-id-bytes.js'
import { decodeKey, encodeKey, keyAfter } from '../store/keys.js'
import type { OrderedDatabase } from '../store/ordered-database.js'
import type { StoredRecord } from '../store/record.js'
import { compareBallots, type Ballot } from './ballot.js'
import { MAX_HISTORY, mergeStates, type Accepted, type AcceptorState, type Decision } from './acceptor-state.js'

/**
 * The acceptor's durable state, one entry per key in the store's `paxos` database (UTF-8 key
 * bytes → encodeState's binary layout; entries written before it, MessagePack format 1, are read
 * too). Each change is decided and written in one transaction and is on disk (flushed) before
 * `update` resolves: an acceptor answers only after its promise or accepted value is durable
 * (CASPaxos needs it; a forgotten promise after a crash could let two values be chosen).
 *
 * Entries are never removed: a key once strong stays strong (docs/consistency.md explains why
 * dropping the state is not safe while an old accept may still be in flight).
 *
 * The decoded states of recently used keys stay in memory (MAX_CACHED_STATES), exactly as last
 * written or read, so an accept of a key that keeps changing decodes nothing: every write of the
 * database goes through this class, and a transaction or flush that fails empties the cache.
 */
const FORMAT_MSGPACK = 1
const FORMAT_BINARY = 2
const packr = new Packr({ useRecords: false })

/** Keys whose decoded state is kept (about 1 KiB each with a 100-byte value and a full history). */
export const MAX_CACHED_STATES = 8192

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
  /** Decoded states as last written or read, least recently used first. */
  readonly #cache = new Map<string, AcceptorState>()

  constructor(db: OrderedDatabase<Uint8Array, Uint8Array>) {
    this.#db = db
  }

  get(key: string): AcceptorState | undefined {
    return this.#stateIn(key)
  }

  /**
   * Reads the key's state, lets `decide` choose the next one, writes it and waits until it is
   * durable; all in one transaction, so concurrent prepares and accepts of a key are serialized.
   */
  async update<R>(key: string, decide: (state: AcceptorState | undefined) => Decision<R>): Promise<R> {
    const { reply, changed } = await this.#durably(this.#db.transaction(() => {
      const decision = decide(this.#stateIn(key))
      if (decision.next !== undefined) this.#write(key, decision.next)
      return { reply: decision.reply, changed: decision.next !== undefined }
    }))
    if (changed) await this.#durably(this.#db.flushed)
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
    const { replies, learned, missing, changed, wrote } = await this.#durably(this.#db.transaction(() => {
      // This transaction's writes, should the cache have let one go meanwhile.
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
            this.#write(step.key, decision.next)
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
    }))
    if (changed) await this.#durably(this.#db.flushed)
    return { replies, learned, missing, within: wrote }
  }

  /** The key's state as the current transaction sees it (or as committed, outside one). */
  #stateIn(key: string): AcceptorState | undefined {
    const cached = this.#cache.get(key)
    if (cached !== undefined) {
      this.#cache.delete(key)
      this.#cache.set(key, cached)
      return cached
    }
    // The fast read's bytes are valid until the next read: decodeState copies what it keeps.
    // lmdb-js returns its shared read buffer with `length` set to the value's size but the
    // buffer's whole byteLength, so the view is cut to `length`.
    const bytes = this.#db.getBinaryFast(encodeKey(key))
    if (bytes === undefined) return undefined
    const state = decodeState(bytes.subarray(0, bytes.length), key)
    this.#remember(key, state)
    return state
  }

  /** Stages `state` in the current transaction; later reads (in it and after it) see it. */
  #write(key: string, state: AcceptorState): void {
    void this.#db.put(encodeKey(key), encodeState(state))
    this.#cache.delete(key)
    this.#remember(key, state)
  }

  #remember(key: string, state: AcceptorState): void {
    this.#cache.set(key, state)
    if (this.#cache.size > MAX_CACHED_STATES) {
      const oldest = this.#cache.keys().next().value
      if (oldest !== undefined) this.#cache.delete(oldest)
    }
  }

  /**
   * A transaction or flush that failed may have left states in the cache that never reached the
   * disk: forget them all, so the next decisions read what is durable.
   */
  async #durably<T>(pending: Promise<T>): Promise<T> {
    try {
      return await pending
    } catch (error) {
      this.#cache.clear()
      throw error
    }
  }

  /** Merges another acceptor's state of `key` into this one's (mergeStates), durably; true when it changed anything. */
  merge(key: string, remote: AcceptorState): Promise<boolean> {
    return this.update(key, (state) => mergeStates(state, remote))
  }

  /** Merges many keys' states at once: one transaction, one flush. */
  async mergeMany(states: readonly { key: string; state: AcceptorState }[]): Promise<void> {
    if (states.length === 0) return
    await this.#durably(this.#db.transaction(() => {
      for (const { key, state } of states) {
        const decision = mergeStates(this.#stateIn(key), state)
        if (decision.next !== undefined) this.#write(key, decision.next)
      }
    }))
    await this.#durably(this.#db.flushed)
  }

  /**
   * Entries after `afterKey` (exclusive; undefined: from the first) whose key `wanted` selects,
   * as stored, until about `maxBytes` or `maxEntries` (and at most 8 × maxEntries keys looked at,
   * so a page never blocks the node long); `next` is the last key looked at when more may follow.
   * It waits for every change decided before the call to be committed first, so the page shows
   * each of them (a catch-up responder relies on it: lib/paxos/catch-up.ts). States travel in
   * MessagePack format 1 (encodeStateForPeers), which every hearsay version reads.
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
        const state = encodeStateForPeers(decodeState(value, key))
        entries.push({ key, state })
        bytes += keyBytes.length + state.length
      }
      if (bytes >= maxBytes || entries.length >= maxEntries || ++looked >= 8 * maxEntries) return { entries, next: last }
    }
    return { entries, next: undefined }
  }
}

/**
 * The state as stored: `[2, promised: counter f64, node 8 bytes, has accepted: u8, then (when 1)
 * accepted ballot: counter f64, node 8 bytes, version: hlc f64, node 8 bytes, value: u8 1 + length
 * u32 + bytes | u8 0 (absent), history length u8, history: (hlc f64, node 8 bytes)…]`, numbers
 * big-endian, node ids as the 8 bytes of their 16 hex digits. About a tenth of the time of the
 * MessagePack layout it replaced, and a third smaller with a full history.
 */
export function encodeState(state: AcceptorState): Buffer {
  const accepted = state.accepted
  const value = accepted?.record.value ?? null
  const size = 1 + 16 + 1 + (accepted === undefined ? 0 : 32 + 1 + (value === null ? 0 : 4 + value.byteLength) + 1 + 16 * accepted.history.length)
  const out = Buffer.allocUnsafe(size)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  let at = 0
  const id = (node: NodeId): void => {
    out.set(nodeIdBytes(node), at)
    at += 8
  }
  const tick = (counter: number): void => {
    view.setFloat64(at, counter)
    at += 8
  }
  out[at++] = FORMAT_BINARY
  tick(state.promised.counter)
  id(state.promised.node)
  if (accepted === undefined) {
    out[at++] = 0
    return out
  }
  out[at++] = 1
  tick(accepted.ballot.counter)
  id(accepted.ballot.node)
  tick(accepted.record.version.hlc)
  id(accepted.record.version.node)
  if (value === null) out[at++] = 0
  else {
    out[at++] = 1
    view.setUint32(at, value.byteLength)
    at += 4
    out.set(value, at)
    at += value.byteLength
  }
  out[at++] = accepted.history.length
  for (const version of accepted.history) {
    tick(version.hlc)
    id(version.node)
  }
  return out
}

/**
 * The state in MessagePack format 1 (`[1, promisedCounter, promisedNode, acceptedCounter | nil,
 * acceptedNode | nil, hlc | nil, node | nil, value | nil, history: [hlc, node, hlc, node, …]]`):
 * what catch-up pages carry, so nodes of every version read them.
 */
export function encodeStateForPeers(state: AcceptorState): Buffer {
  const accepted = state.accepted
  return packr.pack([
    FORMAT_MSGPACK, state.promised.counter, state.promised.node,
    accepted?.ballot.counter ?? null, accepted?.ballot.node ?? null,
    accepted?.record.version.hlc ?? null, accepted?.record.version.node ?? null, accepted?.record.value ?? null,
    (accepted?.history ?? []).flatMap((v) => [v.hlc, v.node]),
  ])
}

/** Either format; what it keeps is copied out of `bytes`. */
export function decodeState(bytes: Uint8Array, key: string): AcceptorState {
  return bytes[0] === FORMAT_BINARY ? decodeBinary(bytes, key) : decodeMessagePack(Uint8Array.from(bytes), key)
}

function decodeBinary(bytes: Uint8Array, key: string): AcceptorState {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 1
  const need = (count: number, what: string): void => {
    if (at + count > bytes.byteLength) throw new CorruptAcceptorStateError(key, `truncated in ${what}`)
  }
  const tick = (what: string): number => {
    need(8, what)
    const counter = view.getFloat64(at)
    at += 8
    if (!isTick(counter)) throw new CorruptAcceptorStateError(key, `bad ${what}`)
    return counter
  }
  const id = (what: string): NodeId => {
    need(8, what)
    const node = nodeIdAt(bytes, at)
    at += 8
    return node
  }
  const byte = (what: string): number => {
    need(1, what)
    return bytes[at++] as number
  }
  const promised = { counter: tick('ballot'), node: id('ballot') }
  const hasAccepted = byte('accepted flag')
  if (hasAccepted === 0) return finish({ promised })
  if (hasAccepted !== 1) throw new CorruptAcceptorStateError(key, 'bad accepted flag')
  const ballot = { counter: tick('ballot'), node: id('ballot') }
  const version = { hlc: tick('accepted version'), node: id('accepted version') }
  let value: Uint8Array | null = null
  const hasValue = byte('value flag')
  if (hasValue === 1) {
    need(4, 'value')
    const length = view.getUint32(at)
    at += 4
    need(length, 'value')
    value = Buffer.from(bytes.subarray(at, at + length))
    at += length
  } else if (hasValue !== 0) throw new CorruptAcceptorStateError(key, 'bad value flag')
  const count = byte('history')
  if (count > MAX_HISTORY) throw new CorruptAcceptorStateError(key, 'bad history')
  const history: Version[] = []
  for (let i = 0; i < count; i++) history.push({ hlc: tick('history version'), node: id('history version') })
  return finish({ promised, accepted: { ballot, record: { value, version, strong: true }, history } })

  function finish(state: AcceptorState): AcceptorState {
    if (at !== bytes.byteLength) throw new CorruptAcceptorStateError(key, 'trailing bytes')
    return state
  }
}

function decodeMessagePack(bytes: Uint8Array, key: string): AcceptorState {
  let decoded: unknown
  try {
    decoded = packr.unpack(bytes)
  } catch (error) {
    throw new CorruptAcceptorStateError(key, `not MessagePack (${(error as Error).message})`)
  }
  if (!Array.isArray(decoded) || decoded.length !== 9) throw new CorruptAcceptorStateError(key, 'not a 9-element array')
  const [format, pCounter, pNode, aCounter, aNode, hlc, node, value, flatHistory] = decoded as unknown[]
  if (format !== FORMAT_MSGPACK) throw new CorruptAcceptorStateError(key, `unknown format ${String(format)}`)
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
