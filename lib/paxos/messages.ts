import { isNodeId, type NodeId, type Version } from '../clock/version.js'
import type { FrameType } from '../codec/frames.js'
import { NODE_ID_BYTES, nodeIdAt, nodeIdBytes, wordAt } from '../codec/node-id-bytes.js'
import { expectArray, expectBytes, expectObject, expectString, expectUint, field, MalformedBodyError } from '../codec/validate.js'
import {
  MAX_WIRE_KEY_CHARS, MAX_WIRE_VALUE_BYTES, compactEntry, fromWire, toWire, validateCompactEntry, type WireEntry,
} from '../replication/messages.js'
import type { StoredRecord } from '../store/record.js'
import type { Ballot } from './ballot.js'
import { MAX_HISTORY, type Accepted } from './acceptor-state.js'

/**
 * CASPaxos frames (docs/protocol.md "Linearizable operations"). A proposer sends `paxosPrepare`
 * and `paxosAccept` to the key's replicas, which act as its acceptors; each answers once its new
 * state is durable.
 *
 * Every prepare and accept carries `set`: the proposer's acceptor set for the key's partition
 * (its replicas in the proposer's view, rank order). An acceptor whose own view differs, or that
 * is still catching up after a change of the set, refuses (lib/paxos/acceptor-sets.ts).
 *
 * - paxosPrepare `{key, ballot, set}` → paxosPromise `{ok: true, accepted, stored}` or
 *   `{ok: false, promised}` (a higher ballot was promised) or `{ok: false, refused}` (this node
 *   takes no part for that key now: not one of its replicas, or repairing).
 *   `accepted` is `{ballot, entry, history}` or null; `stored` is the acceptor's plain record of the key
 *   when it has accepted nothing (the value a first linearizable change starts from), else null.
 * - paxosAccept `{ballot, entry, history, set}` → paxosAccepted `{ok: true}` / `{ok: false, promised}` /
 *   `{ok: false, refused}`. Accepting also promises the proposer's next ballot (the
 *   one-round-trip path, acceptor-state.ts decideAccept).
 * - paxosAcceptMany `{accepts: [{ballot, entry, history, set}], commits: [{key, ballot, at}]}` →
 *   paxosAcceptManyReply `{answers: [paxosAccepted body…], missing: [index…]}`: the accepts a
 *   proposer has for one acceptor within an event-loop turn (or while its earlier batches await
 *   their answer) in one frame and one journal sync (accept-batcher.ts), answered one by one in
 *   order. `commits` says that `key`'s value at `ballot` was chosen (a quorum accepted it): an
 *   acceptor that accepted exactly that ballot writes its accepted value to its store as a strong
 *   record (acceptor.ts); `at` places the commit among the accepts (after the first `at`), as
 *   the proposer queued them. `missing` lists the commits it neither held that ballot for nor saw
 *   superseded by a later learned value of the key, which the proposer then writes there in full
 *   (replicaWrite, hinted on failure).
 *
 * These are the typed bodies handlers see; prepare, promise, accept, accepted and the accept
 * batch travel in a compact form (peer protocol 3, below) that their validators read back.
 * - paxosCatchUp `{partitions: [{partition, set}], after, maxBytes}` → paxosCatchUpReply
 *   `{generation, matched, entries: [{key, state}], next}`: a node catching up after an
 *   acceptor-set change asks a member of the previous set for its acceptor state of those
 *   partitions. `matched` lists the requested partitions whose set (the requester's new view)
 *   is the responder's view too — only their entries are sent; `generation` is the responder's
 *   placement generation, the same on every page when its view did not move meanwhile; `state`
 *   is the acceptor-store encoding (acceptor-store.ts); `next` pages on (null: done). `fresh`
 *   (optional) lists the requested partitions the responder never answered for (a fresh data
 *   dir): they are never matched, and a fresh requester leaves that member out of its guess of
 *   the previous set (acceptor-sets.ts rule 4). `behind` (optional) lists, per matched partition
 *   the responder has not caught up for, the sets it last answered for or still has to catch up
 *   from: a requester that counts it catches up from those too (rule 5).
 */

export const PAXOS_PREPARE = 'paxosPrepare'
export const PAXOS_PROMISE = 'paxosPromise'
export const PAXOS_ACCEPT = 'paxosAccept'
export const PAXOS_ACCEPTED = 'paxosAccepted'
export const PAXOS_ACCEPT_MANY = 'paxosAcceptMany'
export const PAXOS_ACCEPT_MANY_REPLY = 'paxosAcceptManyReply'
export const PAXOS_CATCH_UP = 'paxosCatchUp'
export const PAXOS_CATCH_UP_REPLY = 'paxosCatchUpReply'

/** Accepts and commits one paxosAcceptMany may carry (the batcher sends at most these many). */
export const MAX_ACCEPTS_PER_BATCH = 1024
export const MAX_COMMITS_PER_BATCH = 4096

/** Most members an acceptor set on the wire may name (replication.factor is far below). */
export const MAX_WIRE_SET_MEMBERS = 64
/** Partitions one catch-up request may name (the config allows at most 65,536). */
const MAX_CATCH_UP_PARTITIONS = 65_536
/** Entries and bytes one catch-up page may carry (frames are limited to 4 MiB). */
export const MAX_CATCH_UP_ENTRIES = 4096
export const MAX_CATCH_UP_PAGE_BYTES = 2 * 1024 * 1024
/** Sets one catch-up answer may list as behind for a partition (a responder with more does not match). */
export const MAX_CATCH_UP_BEHIND_SETS = 64
/** An encoded acceptor state: a value plus ballots and a short history. */
const MAX_STATE_BYTES = MAX_WIRE_VALUE_BYTES + 4096

/** Longest refusal reason on the wire. */
export const MAX_REASON_CHARS = 512

export interface WireBallot { readonly counter: number; readonly node: string }

/** `set` is optional on the wire only so that a request from an older node gets a clear refusal. */
export interface PrepareBody { readonly key: string; readonly ballot: Ballot; readonly set?: readonly NodeId[] }
export interface AcceptBody { readonly ballot: Ballot; readonly entry: WireEntry; readonly history: readonly Version[]; readonly set?: readonly NodeId[] }

/**
 * A chosen value an acceptor may learn from its own accepted state: `key` was chosen at `ballot`.
 * `at`: how many of the batch's accepts the proposer queued before it (the acceptor takes
 * accepts and commits in that order).
 */
export interface CommitNotice { readonly key: string; readonly ballot: Ballot; readonly at: number }

export interface AcceptManyBody { readonly accepts: readonly AcceptBody[]; readonly commits: readonly CommitNotice[] }

export interface AcceptManyReplyBody {
  /** One answer per accept, in order. */
  readonly answers: readonly AcceptAnswer[]
  /** Indexes of the commits this acceptor did not learn (it had not accepted exactly that ballot). */
  readonly missing: readonly number[]
}

export interface CatchUpBody {
  readonly partitions: readonly { readonly partition: number; readonly set: readonly NodeId[] }[]
  /** The last key of the previous page (exclusive); null: from the first. */
  readonly after: string | null
  readonly maxBytes: number
}

export interface CatchUpReplyBody {
  readonly generation: number
  readonly matched: readonly number[]
  /** Requested partitions the responder never answered for (a fresh data dir): never in matched (absent from older nodes). */
  readonly fresh?: readonly number[]
  /**
   * Per matched partition the responder has not caught up for: the sets it last answered for or
   * still has to catch up from. Its state covers no more than those, so a requester that counts
   * it catches up from them too (absent from older nodes).
   */
  readonly behind?: readonly { readonly partition: number; readonly sets: readonly (readonly NodeId[])[] }[]
  readonly entries: readonly { readonly key: string; readonly state: Uint8Array }[]
  readonly next: string | null
}

/** An acceptor's answer to a prepare, as the proposer sees it (local and remote alike). */
export type PromiseAnswer =
  | { readonly ok: true; readonly accepted: Accepted | undefined; readonly stored: StoredRecord | undefined }
  | { readonly ok: false; readonly promised: Ballot }
  | { readonly ok: false; readonly refused: string }

export type AcceptAnswer =
  | { readonly ok: true }
  | { readonly ok: false; readonly promised: Ballot }
  | { readonly ok: false; readonly refused: string }

export function promiseToWire(key: string, answer: PromiseAnswer): PromiseBody {
  if (!answer.ok) return { ...answer }
  return {
    ok: true,
    accepted: answer.accepted === undefined ? null : { ballot: answer.accepted.ballot, entry: toWire(key, answer.accepted.record), history: answer.accepted.history },
    stored: answer.stored === undefined ? null : toWire(key, answer.stored),
  }
}

/*
 * The hot frames travel compact (peer protocol 3), as replicaWrite does since issue 15: arrays
 * instead of maps, node ids as 8 bytes, a history as one byte string, and in a paxosAcceptMany
 * the acceptor sets once per batch. Every accept of the CAS benchmark crossed msgpackr as five
 * maps plus one per history version, and its validation tested a regex per node id; in this
 * form it is two arrays (the accept and its entry) around a few byte strings (docs/protocol.md
 * "Linearizable operations" has the layouts).
 *
 * - ballot: `counter, node (bin 8)`, inline in the array that carries it, or `[counter, node]`
 *   where it stands alone (a promised ballot);
 * - history: one byte string of 16 bytes per version, oldest first: hlc as two big-endian uint32
 *   (high word first, below 2^21 so the hlc is a safe integer), then the node id;
 * - set: one byte string of 8 bytes per member, rank order;
 * - answer: `[0]` ok, `[1, counter, node]` a higher ballot promised, `[2, reason]` refused.
 */
const HISTORY_VERSION_BYTES = 16
const WORD = 2 ** 32
/** hlc < 2^53, so its high 32-bit word is below 2^21. */
const MAX_HLC_HIGH_WORD = 2 ** 21 - 1

/** Distinct sets a batch's encoder compares one by one before it keeps a map of them. */
const MAX_SCANNED_SETS = 16

const ANSWER_OK = 0
const ANSWER_PROMISED = 1
const ANSWER_REFUSED = 2
/** One ok answer for all: answers are read only. */
const ACCEPTED: AcceptAnswer = Object.freeze({ ok: true })


function readNodeId(value: unknown, what: string): NodeId {
  if (!(value instanceof Uint8Array) || value.byteLength !== NODE_ID_BYTES) throw new MalformedBodyError(`${what} is not a node id (a byte string of ${NODE_ID_BYTES})`)
  return nodeIdAt(value, 0)
}

function readBallot(counter: unknown, node: unknown, what: string): Ballot {
  return { counter: expectUint(counter, `${what}.counter`), node: readNodeId(node, `${what}.node`) }
}

function encodeHistory(history: readonly Version[]): Buffer {
  const bytes = Buffer.allocUnsafe(history.length * HISTORY_VERSION_BYTES)
  let at = 0
  let lastNode: NodeId | undefined
  let nodeBytes: Buffer | undefined
  // Byte by byte: every accept carries up to 16 versions, and Buffer.writeUInt32BE's and
  // TypedArray.set's argument checks cost more than the copy (a Uint8Array store keeps the low 8 bits).
  for (let v = 0; v < history.length; v++) {
    const version = history[v] as Version
    const hlc = version.hlc
    const node = version.node
    if (!Number.isSafeInteger(hlc) || hlc < 0) throw new RangeError(`a history version's hlc ${hlc} is not a non-negative safe integer`)
    const high = Math.floor(hlc / WORD)
    // Exact for a safe integer, and cheaper than the floating-point remainder.
    const low = hlc - high * WORD
    bytes[at] = high >>> 24
    bytes[at + 1] = high >>> 16
    bytes[at + 2] = high >>> 8
    bytes[at + 3] = high
    bytes[at + 4] = low >>> 24
    bytes[at + 5] = low >>> 16
    bytes[at + 6] = low >>> 8
    bytes[at + 7] = low
    if (node !== lastNode) {
      nodeBytes = nodeIdBytes(node)
      lastNode = node
    }
    for (let i = 0; i < NODE_ID_BYTES; i++) bytes[at + 8 + i] = (nodeBytes as Buffer)[i] as number
    at += HISTORY_VERSION_BYTES
  }
  return bytes
}

/** Accepted.history: at most MAX_HISTORY versions, read in one loop. */
function validateHistory(value: unknown, what: string): Version[] {
  if (!(value instanceof Uint8Array)) throw new MalformedBodyError(`${what} is not a byte string`)
  const count = value.byteLength / HISTORY_VERSION_BYTES
  if (count > MAX_HISTORY) throw new MalformedBodyError(`${what} has ${value.byteLength} bytes, more than ${MAX_HISTORY} versions of ${HISTORY_VERSION_BYTES}`)
  if (!Number.isInteger(count)) throw new MalformedBodyError(`${what} has ${value.byteLength} bytes, not a multiple of ${HISTORY_VERSION_BYTES} (hlc, node per version)`)
  const history: Version[] = []
  for (let at = 0; at < value.byteLength; at += HISTORY_VERSION_BYTES) {
    const high = wordAt(value, at)
    if (high > MAX_HLC_HIGH_WORD) throw new MalformedBodyError(`${what}[${at / HISTORY_VERSION_BYTES}].hlc is above 2^53 (not a safe integer)`)
    history.push({ hlc: high * WORD + wordAt(value, at + 4), node: nodeIdAt(value, at + 8) })
  }
  return history
}

/**
 * Sets' wire bytes by array: a proposer passes the placement table's row of the key's
 * partition, the same array in every batch until placement changes. A hit is checked member by
 * member, so an array changed in place is encoded anew.
 */
const encodedSets = new WeakMap<readonly NodeId[], { readonly members: readonly NodeId[]; readonly bytes: Buffer }>()

function encodeSet(set: readonly NodeId[]): Buffer {
  const cached = encodedSets.get(set)
  if (cached !== undefined && sameMembers(cached.members, set)) return cached.bytes
  const bytes = Buffer.alloc(set.length * NODE_ID_BYTES)
  set.forEach((node, i) => { bytes.set(nodeIdBytes(node), i * NODE_ID_BYTES) })
  encodedSets.set(set, { members: [...set], bytes })
  return bytes
}

/** An acceptor set: at most MAX_WIRE_SET_MEMBERS node ids. */
function validateSet(value: unknown, what: string): NodeId[] {
  if (!(value instanceof Uint8Array)) throw new MalformedBodyError(`${what} is not a byte string`)
  const count = value.byteLength / NODE_ID_BYTES
  if (count > MAX_WIRE_SET_MEMBERS) throw new MalformedBodyError(`${what} has ${value.byteLength} bytes, more than ${MAX_WIRE_SET_MEMBERS} node ids of ${NODE_ID_BYTES}`)
  if (!Number.isInteger(count)) throw new MalformedBodyError(`${what} has ${value.byteLength} bytes, not a multiple of ${NODE_ID_BYTES} (one node id each)`)
  const set: NodeId[] = []
  for (let at = 0; at < value.byteLength; at += NODE_ID_BYTES) set.push(nodeIdAt(value, at))
  return set
}

/** A set as a list of hex node ids (the catch-up frames, which are not on the hot path). */
function validateSetList(value: unknown, what: string): NodeId[] {
  return expectArray(value, what, MAX_WIRE_SET_MEMBERS, (item, itemWhat) => {
    if (!isNodeId(item)) throw new MalformedBodyError(`${itemWhat} must be a node id (16 lowercase hex characters)`)
    return item
  })
}

function expectTuple(value: unknown, what: string, shape: string, minItems: number, maxItems = minItems): unknown[] {
  if (!Array.isArray(value) || value.length < minItems || value.length > maxItems) throw new MalformedBodyError(`${what} is not ${shape}`)
  return value
}

/** An answer's compact form, after `prefix` (the answer's index in a paxosAcceptManyReply). */
function encodeAnswer(answer: AcceptAnswer, ...prefix: unknown[]): unknown[] {
  if (answer.ok) return [...prefix, ANSWER_OK]
  return 'promised' in answer ? [...prefix, ANSWER_PROMISED, answer.promised.counter, nodeIdBytes(answer.promised.node)] : [...prefix, ANSWER_REFUSED, answer.refused]
}

/** The refusal at `tuple[at]` on (`[1, counter, node]` or `[2, reason]`, the tuple's length checked here). */
function validateRefusal(tuple: readonly unknown[], at: number, what: string): { ok: false; promised: Ballot } | { ok: false; refused: string } {
  const code = tuple[at]
  if (code === ANSWER_PROMISED && tuple.length === at + 3) return { ok: false, promised: readBallot(tuple[at + 1], tuple[at + 2], `${what}.promised`) }
  if (code === ANSWER_REFUSED && tuple.length === at + 2) return { ok: false, refused: expectString(tuple[at + 1], `${what}.refused`, MAX_REASON_CHARS, 1) }
  const index = at === 0 ? '' : 'index, '
  throw new MalformedBodyError(`${what} is not [${index}${ANSWER_PROMISED}, counter, node] or [${index}${ANSWER_REFUSED}, reason]`)
}

/** The wire form of a paxosPrepare body: `[key, counter, node, set | nil]`. */
export function encodePrepare(body: PrepareBody): unknown[] {
  return [body.key, body.ballot.counter, nodeIdBytes(body.ballot.node), body.set === undefined ? null : encodeSet(body.set)]
}

export function validatePrepare(body: unknown): PrepareBody {
  const tuple = expectTuple(body, PAXOS_PREPARE, '[key, counter, node, set | nil]', 4)
  const prepare = {
    key: expectString(tuple[0], `${PAXOS_PREPARE}.key`, MAX_WIRE_KEY_CHARS, 1),
    ballot: readBallot(tuple[1], tuple[2], `${PAXOS_PREPARE}.ballot`),
  }
  return tuple[3] === null ? prepare : { ...prepare, set: validateSet(tuple[3], `${PAXOS_PREPARE}.set`) }
}

/** A promise as it crosses the wire (promiseToWire builds it, promiseFromWire reads it). */
export type PromiseBody =
  | { readonly ok: true; readonly accepted: { readonly ballot: Ballot; readonly entry: WireEntry; readonly history: readonly Version[] } | null; readonly stored: WireEntry | null }
  | { readonly ok: false; readonly promised: Ballot }
  | { readonly ok: false; readonly refused: string }

/** The wire form of a paxosPromise body: `[0, [counter, node, entry, history] | nil, entry | nil]` or a refusal. */
export function encodePromise(body: PromiseBody): unknown[] {
  if (!body.ok) return encodeAnswer(body)
  const { accepted, stored } = body
  return [
    ANSWER_OK,
    accepted === null ? null : [accepted.ballot.counter, nodeIdBytes(accepted.ballot.node), compactEntry(accepted.entry), encodeHistory(accepted.history)],
    stored === null ? null : compactEntry(stored),
  ]
}

export function validatePromise(body: unknown): PromiseBody {
  const tuple = expectTuple(body, PAXOS_PROMISE, '[0, accepted, stored] or a refusal', 2, 3)
  if (tuple[0] !== ANSWER_OK) return validateRefusal(tuple, 0, PAXOS_PROMISE)
  if (tuple.length !== 3) throw new MalformedBodyError(`${PAXOS_PROMISE} is not [0, accepted, stored]`)
  let accepted: { ballot: Ballot; entry: WireEntry; history: Version[] } | null = null
  if (tuple[1] !== null) {
    const what = `${PAXOS_PROMISE}.accepted`
    const a = expectTuple(tuple[1], what, '[counter, node, entry, history]', 4)
    accepted = { ballot: readBallot(a[0], a[1], `${what}.ballot`), entry: validateCompactEntry(a[2], `${what}.entry`), history: validateHistory(a[3], `${what}.history`) }
  }
  return { ok: true, accepted, stored: tuple[2] === null ? null : validateCompactEntry(tuple[2], `${PAXOS_PROMISE}.stored`) }
}

/**
 * The acceptor's answer from a validated promise about `key`. Records about another key are a
 * peer bug and count as no answer (throws), never as the register's value.
 */
export function promiseFromWire(key: string, body: PromiseBody): PromiseAnswer {
  if (!body.ok) return body
  for (const entry of [body.accepted?.entry, body.stored]) {
    if (entry != null && entry.key !== key) throw new MalformedBodyError(`${PAXOS_PROMISE} for key ${JSON.stringify(key)} carries a record of another key`)
  }
  return {
    ok: true,
    accepted: body.accepted === null ? undefined : { ballot: body.accepted.ballot, record: { ...fromWire(body.accepted.entry), strong: true }, history: body.accepted.history },
    stored: body.stored === null ? undefined : fromWire(body.stored),
  }
}

/** An accept without its set: `[counter, node, entry, history, …]`. */
function encodeAcceptFields(accept: AcceptBody, set: unknown): unknown[] {
  return [accept.ballot.counter, nodeIdBytes(accept.ballot.node), compactEntry(accept.entry), encodeHistory(accept.history), set]
}

function validateAcceptFields(value: unknown, what: string, readSet: (set: unknown, what: string) => readonly NodeId[]): AcceptBody {
  const tuple = expectTuple(value, what, '[counter, node, entry, history, set]', 5)
  const ballot = readBallot(tuple[0], tuple[1], `${what}.ballot`)
  const entry = validateCompactEntry(tuple[2], `${what}.entry`)
  const history = validateHistory(tuple[3], `${what}.history`)
  return tuple[4] === null ? { ballot, entry, history } : { ballot, entry, history, set: readSet(tuple[4], `${what}.set`) }
}

/** The wire form of a paxosAccept body: `[counter, node, entry, history, set | nil]`. */
export function encodeAccept(body: AcceptBody): unknown[] {
  return encodeAcceptFields(body, body.set === undefined ? null : encodeSet(body.set))
}

export function validateAccept(body: unknown): AcceptBody {
  return validateAcceptFields(body, PAXOS_ACCEPT, validateSet)
}

/** The wire form of a paxosAccepted body: an answer (`[0]`, `[1, counter, node]` or `[2, reason]`). */
export function encodeAccepted(body: AcceptAnswer): unknown[] {
  return encodeAnswer(body)
}

export function validateAccepted(body: unknown): AcceptAnswer {
  const tuple = expectTuple(body, PAXOS_ACCEPTED, '[0], [1, counter, node] or [2, reason]', 1, 3)
  if (tuple[0] === ANSWER_OK && tuple.length === 1) return ACCEPTED
  return validateRefusal(tuple, 0, PAXOS_ACCEPTED)
}

/**
 * A batch's acceptor sets, each once, by index. A proposer passes the placement table's row of
 * the key's partition (one array per partition) and a batch sees few distinct sets, so they are
 * compared member by member up to MAX_SCANNED_SETS, and looked up by their joined ids beyond.
 */
class SetTable {
  /** The table as it goes on the wire. */
  readonly encoded: Buffer[] = []
  readonly #sets: (readonly NodeId[])[] = []
  #byMembers: Map<string, number> | undefined

  indexOf(set: readonly NodeId[]): number {
    if (this.#byMembers === undefined) {
      for (let i = 0; i < this.#sets.length; i++) if (sameMembers(this.#sets[i] as readonly NodeId[], set)) return i
      if (this.#sets.length < MAX_SCANNED_SETS) return this.#add(set)
      this.#byMembers = new Map(this.#sets.map((known, i) => [known.join(), i]))
    }
    const members = set.join()
    const found = this.#byMembers.get(members)
    if (found !== undefined) return found
    this.#byMembers.set(members, this.#sets.length)
    return this.#add(set)
  }

  #add(set: readonly NodeId[]): number {
    this.#sets.push(set)
    this.encoded.push(encodeSet(set))
    return this.#sets.length - 1
  }
}

function sameMembers(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The wire form of a paxosAcceptMany body: `[sets, accepts, commits]`. `sets` lists each
 * distinct acceptor set of the batch once (a set per key's partition, and a batch's keys mostly
 * share a few); an accept is `[counter, node, entry, history, set index | nil]`, a commit
 * `[key, counter, node, at]`.
 */
export function encodeAcceptMany(body: AcceptManyBody): unknown[] {
  const sets = new SetTable()
  const accepts = body.accepts.map((accept) => encodeAcceptFields(accept, accept.set === undefined ? null : sets.indexOf(accept.set)))
  const commits = body.commits.map(({ key, ballot, at }) => [key, ballot.counter, nodeIdBytes(ballot.node), at])
  return [sets.encoded, accepts, commits]
}

export function validateAcceptMany(body: unknown): AcceptManyBody {
  const tuple = expectTuple(body, PAXOS_ACCEPT_MANY, '[sets, accepts, commits]', 3)
  const sets = expectArray(tuple[0], `${PAXOS_ACCEPT_MANY}.sets`, MAX_ACCEPTS_PER_BATCH, validateSet)
  const setAt = (index: unknown, what: string): readonly NodeId[] => {
    const found = sets[expectUint(index, what)]
    if (found === undefined) throw new MalformedBodyError(`${what} is index ${index as number}, but the batch lists ${sets.length} sets`)
    return found
  }
  return {
    accepts: expectArray(tuple[1], `${PAXOS_ACCEPT_MANY}.accepts`, MAX_ACCEPTS_PER_BATCH, (item, what) => validateAcceptFields(item, what, setAt)),
    commits: expectArray(tuple[2], `${PAXOS_ACCEPT_MANY}.commits`, MAX_COMMITS_PER_BATCH, (item, what) => {
      const c = expectTuple(item, what, '[key, counter, node, at]', 4)
      return {
        key: expectString(c[0], `${what}.key`, MAX_WIRE_KEY_CHARS, 1),
        ballot: readBallot(c[1], c[2], `${what}.ballot`),
        at: expectUint(c[3], `${what}.at`, MAX_ACCEPTS_PER_BATCH),
      }
    }),
  }
}

/**
 * The wire form of a paxosAcceptManyReply body: `[count, refusals, missing]`. Every answer is
 * ok but those `refusals` lists, in ascending index order, as `[index, 1, counter, node]` or
 * `[index, 2, reason]`.
 */
export function encodeAcceptManyReply(body: AcceptManyReplyBody): unknown[] {
  const refusals: unknown[] = []
  body.answers.forEach((answer, i) => { if (!answer.ok) refusals.push(encodeAnswer(answer, i)) })
  return [body.answers.length, refusals, body.missing]
}

export function validateAcceptManyReply(body: unknown): AcceptManyReplyBody {
  const tuple = expectTuple(body, PAXOS_ACCEPT_MANY_REPLY, '[count, refusals, missing]', 3)
  const count = expectUint(tuple[0], `${PAXOS_ACCEPT_MANY_REPLY}.count`, MAX_ACCEPTS_PER_BATCH)
  const answers: AcceptAnswer[] = new Array<AcceptAnswer>(count).fill(ACCEPTED)
  let after = -1
  expectArray(tuple[1], `${PAXOS_ACCEPT_MANY_REPLY}.refusals`, count, (item, what) => {
    const refusal = expectTuple(item, what, '[index, 1, counter, node] or [index, 2, reason]', 3, 4)
    const index = expectUint(refusal[0], `${what}.index`, count - 1)
    if (index <= after) throw new MalformedBodyError(`${what}.index is ${index}, not above the previous refusal's ${after}`)
    after = index
    answers[index] = validateRefusal(refusal, 1, what)
  })
  return {
    answers,
    missing: expectArray(tuple[2], `${PAXOS_ACCEPT_MANY_REPLY}.missing`, MAX_COMMITS_PER_BATCH, (item, what) => expectUint(item, what, MAX_COMMITS_PER_BATCH - 1)),
  }
}

export function validateCatchUp(body: unknown): CatchUpBody {
  const object = expectObject(body, PAXOS_CATCH_UP)
  const after = field(object, 'after')
  return {
    partitions: expectArray(field(object, 'partitions'), `${PAXOS_CATCH_UP}.partitions`, MAX_CATCH_UP_PARTITIONS, (item, what) => {
      const p = expectObject(item, what)
      return { partition: expectUint(field(p, 'partition'), `${what}.partition`, MAX_CATCH_UP_PARTITIONS - 1), set: validateSetList(field(p, 'set'), `${what}.set`) }
    }),
    after: after === null ? null : expectString(after, `${PAXOS_CATCH_UP}.after`, MAX_WIRE_KEY_CHARS, 1),
    maxBytes: expectUint(field(object, 'maxBytes'), `${PAXOS_CATCH_UP}.maxBytes`, MAX_CATCH_UP_PAGE_BYTES),
  }
}

export function validateCatchUpReply(body: unknown): CatchUpReplyBody {
  const object = expectObject(body, PAXOS_CATCH_UP_REPLY)
  const next = field(object, 'next')
  const fresh = field(object, 'fresh')
  const behind = field(object, 'behind')
  return {
    generation: expectUint(field(object, 'generation'), `${PAXOS_CATCH_UP_REPLY}.generation`),
    matched: expectArray(field(object, 'matched'), `${PAXOS_CATCH_UP_REPLY}.matched`, MAX_CATCH_UP_PARTITIONS, (item, what) => expectUint(item, what, MAX_CATCH_UP_PARTITIONS - 1)),
    ...(fresh === undefined ? {} : { fresh: expectArray(fresh, `${PAXOS_CATCH_UP_REPLY}.fresh`, MAX_CATCH_UP_PARTITIONS, (item, what) => expectUint(item, what, MAX_CATCH_UP_PARTITIONS - 1)) }),
    ...(behind === undefined ? {} : {
      behind: expectArray(behind, `${PAXOS_CATCH_UP_REPLY}.behind`, MAX_CATCH_UP_PARTITIONS, (item, what) => {
        const b = expectObject(item, what)
        return {
          partition: expectUint(field(b, 'partition'), `${what}.partition`, MAX_CATCH_UP_PARTITIONS - 1),
          sets: expectArray(field(b, 'sets'), `${what}.sets`, MAX_CATCH_UP_BEHIND_SETS, (set, setWhat) => validateSetList(set, setWhat)),
        }
      }),
    }),
    entries: expectArray(field(object, 'entries'), `${PAXOS_CATCH_UP_REPLY}.entries`, MAX_CATCH_UP_ENTRIES, (item, what) => {
      const e = expectObject(item, what)
      return { key: expectString(field(e, 'key'), `${what}.key`, MAX_WIRE_KEY_CHARS, 1), state: expectBytes(field(e, 'state'), `${what}.state`, MAX_STATE_BYTES, 1) }
    }),
    next: next === null ? null : expectString(next, `${PAXOS_CATCH_UP_REPLY}.next`, MAX_WIRE_KEY_CHARS, 1),
  }
}

/** This protocol's frames, for the frame table (lib/codec/frames.ts). */
export const PAXOS_FRAMES: readonly FrameType[] = [
  { code: 0x60, name: PAXOS_PREPARE, kind: 'request', validate: validatePrepare, encode: (body) => encodePrepare(body as PrepareBody) },
  { code: 0x61, name: PAXOS_PROMISE, kind: 'reply', validate: validatePromise, encode: (body) => encodePromise(body as PromiseBody) },
  { code: 0x62, name: PAXOS_ACCEPT, kind: 'request', validate: validateAccept, encode: (body) => encodeAccept(body as AcceptBody) },
  { code: 0x63, name: PAXOS_ACCEPTED, kind: 'reply', validate: validateAccepted, encode: (body) => encodeAccepted(body as AcceptAnswer) },
  { code: 0x64, name: PAXOS_CATCH_UP, kind: 'request', validate: validateCatchUp },
  { code: 0x65, name: PAXOS_CATCH_UP_REPLY, kind: 'reply', validate: validateCatchUpReply },
  { code: 0x66, name: PAXOS_ACCEPT_MANY, kind: 'request', validate: validateAcceptMany, encode: (body) => encodeAcceptMany(body as AcceptManyBody) },
  { code: 0x67, name: PAXOS_ACCEPT_MANY_REPLY, kind: 'reply', validate: validateAcceptManyReply, encode: (body) => encodeAcceptManyReply(body as AcceptManyReplyBody) },
]
