import { Packr } from 'msgpackr'
import { isNodeId, type NodeId, type Version } from '../clock/version.js'
import { nodeIdAt, nodeIdBytes } from '../codec/node-id-bytes.js'
import { decodeKey, encodeKey, keyAfter } from '../store/keys.js'
import type { OrderedDatabase } from '../store/ordered-database.js'
import type { StoredRecord } from '../store/record.js'
import { compareBallots, type Ballot } from './ballot.js'
import { MAX_HISTORY, mergeStates, type Accepted, type AcceptorState, type Decision } from './acceptor-state.js'
import { AcceptorJournal, encodeJournalRecord, readJournalRecords, type Checksum, type JournalMedium } from './acceptor-journal.js'
import { loadXxh64, XXH64_SEED } from '../hash/xxh64.js'

/**
 * The acceptor's durable state, one entry per key. A change is decided on the main thread,
 * appended to the acceptor journal (lib/paxos/acceptor-journal.ts) and answered once the journal
 * synced it: an acceptor answers only after its promise or accepted value is durable (CASPaxos
 * needs it; a forgotten promise after a crash could let two values be chosen). The states the
 * journal holds stay in memory (`dirty`) until a checkpoint writes them into the store's `paxos`
 * database (UTF-8 key bytes → encodeState's binary layout; entries written before it, MessagePack
 * format 1, are read too) and retires the journal segments they came from. Opening replays the
 * journal over the database by mergeStates, which keeps the later of two states of one acceptor
 * (promises and accepted ballots only grow), so a segment replayed twice, or a database a
 * checkpoint left ahead of the journal, comes out the same.
 *
 * Entries are never removed: a key once strong stays strong (docs/consistency.md explains why
 * dropping the state is not safe while an old accept may still be in flight).
 *
 * The decoded states of recently used clean keys stay in memory too (MAX_CACHED_STATES), so an
 * accept of a key that keeps changing decodes nothing.
 */
const FORMAT_MSGPACK = 1
const FORMAT_BINARY = 2
const packr = new Packr({ useRecords: false })

/** Keys whose decoded state is kept (about 1 KiB each with a 100-byte value and a full history). */
export const MAX_CACHED_STATES = 8192
/** A journal segment is retired (its states checkpointed into the database) at about this size. */
export const MAX_JOURNAL_SEGMENT_BYTES = 16 * 1024 * 1024
/** …or once this many keys' states are held only by the journal (and memory). */
export const MAX_DIRTY_STATES = 8192
/** States a checkpoint writes per database transaction. */
const CHECKPOINT_CHUNK_STATES = 512

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

export interface AcceptorStoreOptions {
  readonly db: OrderedDatabase<Uint8Array, Uint8Array>
  readonly journal: JournalMedium
  /** Defaults MAX_JOURNAL_SEGMENT_BYTES and MAX_DIRTY_STATES (tests set them low). */
  readonly maxSegmentBytes?: number
  readonly maxDirtyStates?: number
  /** A checkpoint failed (the database is full, say): the journal keeps the states, and it is tried again later. */
  readonly onCheckpointError?: (error: unknown) => void
  /** Runs the journal's syncs after the current turn (AcceptorJournal); setImmediate by default. */
  readonly defer?: (task: () => void) => void
  /** A segment ended in a torn record at open: the unanswered tail of a crash, dropped. */
  readonly onTornSegment?: (segment: number, validBytes: number, totalBytes: number) => void
}

/** A state only the journal holds, with the bytes it was journalled as (a checkpoint writes those). */
interface DirtyState { readonly state: AcceptorState; readonly bytes: Buffer }

export class AcceptorStore {
  readonly #db: OrderedDatabase<Uint8Array, Uint8Array>
  readonly #journal: AcceptorJournal
  readonly #checksum: Checksum
  readonly #maxSegmentBytes: number
  readonly #maxDirtyStates: number
  readonly #onCheckpointError: (error: unknown) => void
  /** States newer than the database's, by key: never evicted before a checkpoint writes them. */
  readonly #dirty = new Map<string, DirtyState>()
  /** Decoded states of clean keys as in the database, least recently used first. */
  readonly #cache = new Map<string, AcceptorState>()
  #checkpointing: Promise<void> | undefined
  /** After a failed checkpoint, the dirty count that tries again (the segment size does so by itself). */
  #retryAtDirty = 0

  private constructor(options: AcceptorStoreOptions, journal: AcceptorJournal, checksum: Checksum) {
    this.#db = options.db
    this.#journal = journal
    this.#checksum = checksum
    this.#maxSegmentBytes = options.maxSegmentBytes ?? MAX_JOURNAL_SEGMENT_BYTES
    this.#maxDirtyStates = options.maxDirtyStates ?? MAX_DIRTY_STATES
    this.#onCheckpointError = options.onCheckpointError ?? (() => undefined)
  }

  /**
   * Opens the store on its database and journal: replays every segment (a torn last record is
   * dropped: nobody was answered for it), writes what they held into the database and removes
   * them, and starts a new segment.
   */
  static async open(options: AcceptorStoreOptions): Promise<AcceptorStore> {
    const { h64Raw } = await loadXxh64()
    const checksum: Checksum = (bytes) => h64Raw(bytes, XXH64_SEED)
    const segments = await options.journal.list()
    const next = (segments.at(-1)?.id ?? 0) + 1
    const store = new AcceptorStore(options, new AcceptorJournal(options.journal, options.journal.create(next), options.defer), checksum)
    // Each key's state after every record of it, encoded once for the checkpoint below.
    const replayed = new Map<string, AcceptorState>()
    for (const { id, bytes } of segments) {
      const { records, validBytes, torn } = readJournalRecords(bytes, checksum)
      if (torn) options.onTornSegment?.(id, validBytes, bytes.byteLength)
      for (const { key, state } of records) {
        const next = mergeStates(replayed.get(key) ?? store.#replayBase(key), decodeState(state, key)).next
        if (next !== undefined) replayed.set(key, next)
      }
    }
    for (const [key, state] of replayed) store.#dirty.set(key, { state, bytes: encodeState(state) })
    if (store.#dirty.size > 0) await store.#writeDirty()
    for (const { id } of segments) await options.journal.remove(id)
    return store
  }

  get(key: string): AcceptorState | undefined {
    return this.#stateIn(key)
  }

  /** Lets `decide` choose the key's next state from its current one, and answers once that is durable. */
  async update<R>(key: string, decide: (state: AcceptorState | undefined) => Decision<R>): Promise<R> {
    const decision = decide(this.#stateIn(key))
    if (decision.next !== undefined) this.#write(key, decision.next)
    // Even an answer that changed nothing waits: it may rest on a state not yet durable.
    await this.#journal.durable()
    return decision.reply
  }

  /**
   * Several keys' update()s and lookups, decided in the order given (each seeing the changes of
   * the ones before it) and answered after one sync. A lookup (`chosen`: `key` was chosen at
   * `ballot`) finds the value this acceptor accepted at exactly that ballot — a ballot carries
   * one value, so that is the chosen one — and returns it in `learned`; otherwise its index
   * among the lookups is in `missing`. Order matters: a batch may carry a key's accept at b, the
   * commit of b, then the accept at b + 1.
   */
  async updateMany<R>(steps: readonly UpdateStep<R>[]): Promise<{ replies: R[]; learned: Learned[]; missing: number[] }> {
    const replies: R[] = []
    const learned: Learned[] = []
    const missing: number[] = []
    let lookups = 0
    for (const step of steps) {
      if ('decide' in step) {
        let decision: Decision<R>
        try {
          decision = step.decide(this.#stateIn(step.key))
        } catch (error) {
          // One key's corrupt state fails that key's step, not its neighbours in the batch.
          if (!(error instanceof CorruptAcceptorStateError)) throw error
          replies.push(step.corrupt(error))
          continue
        }
        if (decision.next !== undefined) this.#write(step.key, decision.next)
        replies.push(decision.reply)
      } else {
        let accepted: Accepted | undefined
        try {
          accepted = this.#stateIn(step.key)?.accepted
        } catch (error) {
          if (!(error instanceof CorruptAcceptorStateError)) throw error
        }
        if (accepted !== undefined && compareBallots(accepted.ballot, step.chosen) === 0) learned.push({ key: step.key, record: accepted.record, lookup: lookups })
        else missing.push(lookups)
        lookups++
      }
    }
    await this.#journal.durable()
    return { replies, learned, missing }
  }

  /** Merges another acceptor's state of `key` into this one's (mergeStates), durably; true when it changed anything. */
  merge(key: string, remote: AcceptorState): Promise<boolean> {
    return this.update(key, (state) => mergeStates(state, remote))
  }

  /** Merges many keys' states at once: one sync. */
  async mergeMany(states: readonly { key: string; state: AcceptorState }[]): Promise<void> {
    for (const { key, state } of states) {
      const decision = mergeStates(this.#stateIn(key), state)
      if (decision.next !== undefined) this.#write(key, decision.next)
    }
    await this.#journal.durable()
  }

  /**
   * Writes every state only the journal holds into the database and removes the journal
   * segments they came from (one at a time; a second call waits for the first and goes on with
   * what changed meanwhile). Resolves once the database has them on disk.
   */
  async checkpoint(): Promise<void> {
    while (this.#checkpointing !== undefined) await this.#checkpointing.catch(() => undefined)
    if (this.#dirty.size === 0) return
    this.#checkpointing = (async () => {
      this.#journal.rotate()
      await this.#writeDirty()
      await this.#journal.releaseRetired()
    })().finally(() => { this.#checkpointing = undefined })
    await this.#checkpointing
  }

  /** Checkpoints what the journal holds, then closes it (what is left is replayed at the next open). */
  async close(): Promise<void> {
    if (this.#journal.failed === undefined) await this.checkpoint().catch((error: unknown) => this.#onCheckpointError(error))
    await this.#journal.close()
  }

  /**
   * Entries after `afterKey` (exclusive; undefined: from the first) whose key `wanted` selects,
   * as stored, until about `maxBytes` or `maxEntries` (and at most 8 × maxEntries keys looked at,
   * so a page never blocks the node long); `next` is the last key looked at when more may follow.
   * It checkpoints first, so the page shows every change decided before the call (a catch-up
   * responder relies on it: lib/paxos/catch-up.ts). States travel in MessagePack format 1
   * (encodeStateForPeers), which every hearsay version reads.
   */
  async scan(afterKey: string | undefined, maxBytes: number, maxEntries: number, wanted: (key: string) => boolean):
    Promise<{ entries: { key: string; state: Uint8Array }[]; next: string | undefined }> {
    await this.checkpoint()
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

  /**
   * What a replayed record merges into: the state so far. A corrupt one in the database yields to
   * the journal's (a full state, and the newest this node answered with) rather than keep the
   * node from starting.
   */
  #replayBase(key: string): AcceptorState | undefined {
    try {
      return this.#stateIn(key)
    } catch (error) {
      if (error instanceof CorruptAcceptorStateError) return undefined
      throw error
    }
  }

  /** The key's latest state: the journal's when it holds one, else the database's. */
  #stateIn(key: string): AcceptorState | undefined {
    const dirty = this.#dirty.get(key)
    if (dirty !== undefined) return dirty.state
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

  /** Journals `state` (durable at the journal's next sync); later reads see it. */
  #write(key: string, state: AcceptorState): void {
    const bytes = encodeState(state)
    this.#journal.append(encodeJournalRecord(key, bytes, this.#checksum))
    this.#dirty.set(key, { state, bytes })
    this.#cache.delete(key)
    if (this.#checkpointing === undefined && (this.#journal.segmentBytes >= this.#maxSegmentBytes ||
      this.#dirty.size >= Math.max(this.#maxDirtyStates, this.#retryAtDirty))) {
      this.checkpoint().catch((error: unknown) => {
        this.#retryAtDirty = this.#dirty.size + this.#maxDirtyStates
        this.#onCheckpointError(error)
      })
    }
  }

  /**
   * Writes the dirty states as of now into the database, CHECKPOINT_CHUNK_STATES per transaction
   * (the states are independent, and a transaction's puts hold the event loop: 8,192 in one held
   * it 70–80 ms); those not changed meanwhile are clean after.
   */
  async #writeDirty(): Promise<void> {
    const snapshot = [...this.#dirty]
    for (let start = 0; start < snapshot.length; start += CHECKPOINT_CHUNK_STATES) {
      const chunk = snapshot.slice(start, start + CHECKPOINT_CHUNK_STATES)
      await this.#db.transaction(() => {
        for (const [key, { bytes }] of chunk) void this.#db.put(encodeKey(key), bytes)
      })
    }
    await this.#db.flushed
    for (const [key, entry] of snapshot) {
      if (this.#dirty.get(key) !== entry) continue
      this.#dirty.delete(key)
      this.#remember(key, entry.state)
    }
    this.#retryAtDirty = 0
  }

  #remember(key: string, state: AcceptorState): void {
    this.#cache.set(key, state)
    if (this.#cache.size > MAX_CACHED_STATES) {
      const oldest = this.#cache.keys().next().value
      if (oldest !== undefined) this.#cache.delete(oldest)
    }
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
