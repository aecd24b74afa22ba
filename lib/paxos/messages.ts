import { isNodeId, type NodeId, type Version } from '../clock/version.js'
import type { FrameType } from '../codec/frames.js'
import { expectArray, expectBoolean, expectBytes, expectObject, expectString, expectUint, field, MalformedBodyError, optional } from '../codec/validate.js'
import { MAX_WIRE_KEY_CHARS, MAX_WIRE_VALUE_BYTES, fromWire, toWire, validateWireEntry, type WireEntry } from '../replication/messages.js'
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
 *   their answer) in one frame and one transaction (accept-batcher.ts), answered one by one in
 *   order. `commits` says that `key`'s value at `ballot` was chosen (a quorum accepted it): an
 *   acceptor that accepted exactly that ballot writes its accepted value to its store as a strong
 *   record (acceptor.ts); `at` places the commit among the accepts (after the first `at`), as
 *   the proposer queued them. `missing` lists the commits it neither held that ballot for nor saw
 *   superseded by a later learned value of the key, which the proposer then writes there in full
 *   (replicaWrite, hinted on failure).
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

export function promiseToWire(key: string, answer: PromiseAnswer): Record<string, unknown> {
  if (!answer.ok) return { ...answer }
  return {
    ok: true,
    accepted: answer.accepted === undefined ? null : { ballot: answer.accepted.ballot, entry: toWire(key, answer.accepted.record), history: answer.accepted.history },
    stored: answer.stored === undefined ? null : toWire(key, answer.stored),
  }
}

/**
 * Accepted.history on the wire: `[{hlc, node}…]`, at most MAX_HISTORY. Every accept carries one,
 * so a well-formed history is checked in one loop without building a field path per version;
 * anything else goes through the general validators for their one-line reason.
 */
function validateHistory(value: unknown, what: string): Version[] {
  if (Array.isArray(value) && value.length <= MAX_HISTORY) {
    const history: Version[] = []
    for (const item of value as unknown[]) {
      if (typeof item !== 'object' || item === null || Object.getPrototypeOf(item) !== Object.prototype) break
      const hlc: unknown = Object.hasOwn(item, 'hlc') ? (item as Record<string, unknown>)['hlc'] : undefined
      const node: unknown = Object.hasOwn(item, 'node') ? (item as Record<string, unknown>)['node'] : undefined
      if (typeof hlc !== 'number' || !Number.isSafeInteger(hlc) || hlc < 0 || !isNodeId(node)) break
      history.push({ hlc, node })
    }
    if (history.length === value.length) return history
  }
  return expectArray(value, what, MAX_HISTORY, (item, itemWhat) => {
    const object = expectObject(item, itemWhat)
    const node = field(object, 'node')
    if (!isNodeId(node)) throw new MalformedBodyError(`${itemWhat}.node must be a node id (16 lowercase hex characters)`)
    return { hlc: expectUint(field(object, 'hlc'), `${itemWhat}.hlc`), node }
  })
}

function validateBallot(value: unknown, what: string): Ballot {
  const object = expectObject(value, what)
  const counter = expectUint(field(object, 'counter'), `${what}.counter`)
  const node = field(object, 'node')
  if (!isNodeId(node)) throw new MalformedBodyError(`${what}.node must be a node id (16 lowercase hex characters)`)
  return { counter, node }
}

/** `{ok: false, ...}`: a higher promise or a refusal, exactly one of the two. */
function validateRefusal(object: Readonly<Record<string, unknown>>, what: string): { ok: false; promised: Ballot } | { ok: false; refused: string } {
  const refused = optional(field(object, 'refused'), `${what}.refused`, (v, w) => expectString(v, w, MAX_REASON_CHARS, 1))
  if (refused !== undefined) return { ok: false, refused }
  return { ok: false, promised: validateBallot(field(object, 'promised'), `${what}.promised`) }
}

function validateSet(value: unknown, what: string): NodeId[] {
  return expectArray(value, what, MAX_WIRE_SET_MEMBERS, (item, itemWhat) => {
    if (!isNodeId(item)) throw new MalformedBodyError(`${itemWhat} must be a node id (16 lowercase hex characters)`)
    return item
  })
}

function optionalSet(object: Readonly<Record<string, unknown>>, what: string): { set?: NodeId[] } {
  const set = optional(field(object, 'set'), what, validateSet)
  return set === undefined ? {} : { set }
}

export function validatePrepare(body: unknown): PrepareBody {
  const object = expectObject(body, PAXOS_PREPARE)
  return {
    key: expectString(field(object, 'key'), `${PAXOS_PREPARE}.key`, MAX_WIRE_KEY_CHARS, 1),
    ballot: validateBallot(field(object, 'ballot'), `${PAXOS_PREPARE}.ballot`),
    ...optionalSet(object, `${PAXOS_PREPARE}.set`),
  }
}

/** A promise as it crosses the wire (promiseToWire builds it, promiseFromWire reads it). */
export type PromiseBody =
  | { readonly ok: true; readonly accepted: { readonly ballot: Ballot; readonly entry: WireEntry; readonly history: readonly Version[] } | null; readonly stored: WireEntry | null }
  | { readonly ok: false; readonly promised: Ballot }
  | { readonly ok: false; readonly refused: string }

export function validatePromise(body: unknown): PromiseBody {
  const object = expectObject(body, PAXOS_PROMISE)
  if (!expectBoolean(field(object, 'ok'), `${PAXOS_PROMISE}.ok`)) return validateRefusal(object, PAXOS_PROMISE)
  const rawAccepted = field(object, 'accepted')
  let accepted: { ballot: Ballot; entry: WireEntry; history: Version[] } | null = null
  if (rawAccepted !== null) {
    const a = expectObject(rawAccepted, `${PAXOS_PROMISE}.accepted`)
    accepted = {
      ballot: validateBallot(field(a, 'ballot'), `${PAXOS_PROMISE}.accepted.ballot`),
      entry: validateWireEntry(field(a, 'entry'), `${PAXOS_PROMISE}.accepted.entry`),
      history: validateHistory(field(a, 'history'), `${PAXOS_PROMISE}.accepted.history`),
    }
  }
  const rawStored = field(object, 'stored')
  return { ok: true, accepted, stored: rawStored === null ? null : validateWireEntry(rawStored, `${PAXOS_PROMISE}.stored`) }
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

export function validateAccept(body: unknown): AcceptBody {
  const object = expectObject(body, PAXOS_ACCEPT)
  return {
    ballot: validateBallot(field(object, 'ballot'), `${PAXOS_ACCEPT}.ballot`),
    entry: validateWireEntry(field(object, 'entry'), `${PAXOS_ACCEPT}.entry`),
    history: validateHistory(field(object, 'history'), `${PAXOS_ACCEPT}.history`),
    ...optionalSet(object, `${PAXOS_ACCEPT}.set`),
  }
}

export function validateAccepted(body: unknown): AcceptAnswer {
  const object = expectObject(body, PAXOS_ACCEPTED)
  if (expectBoolean(field(object, 'ok'), `${PAXOS_ACCEPTED}.ok`)) return { ok: true }
  return validateRefusal(object, PAXOS_ACCEPTED)
}

export function validateAcceptMany(body: unknown): AcceptManyBody {
  const object = expectObject(body, PAXOS_ACCEPT_MANY)
  return {
    accepts: expectArray(field(object, 'accepts'), `${PAXOS_ACCEPT_MANY}.accepts`, MAX_ACCEPTS_PER_BATCH, (item) => validateAccept(item)),
    commits: expectArray(field(object, 'commits'), `${PAXOS_ACCEPT_MANY}.commits`, MAX_COMMITS_PER_BATCH, (item, what) => {
      const c = expectObject(item, what)
      return {
        key: expectString(field(c, 'key'), `${what}.key`, MAX_WIRE_KEY_CHARS, 1),
        ballot: validateBallot(field(c, 'ballot'), `${what}.ballot`),
        at: expectUint(field(c, 'at'), `${what}.at`, MAX_ACCEPTS_PER_BATCH),
      }
    }),
  }
}

export function validateAcceptManyReply(body: unknown): AcceptManyReplyBody {
  const object = expectObject(body, PAXOS_ACCEPT_MANY_REPLY)
  return {
    answers: expectArray(field(object, 'answers'), `${PAXOS_ACCEPT_MANY_REPLY}.answers`, MAX_ACCEPTS_PER_BATCH, (item) => validateAccepted(item)),
    missing: expectArray(field(object, 'missing'), `${PAXOS_ACCEPT_MANY_REPLY}.missing`, MAX_COMMITS_PER_BATCH, (item, what) => expectUint(item, what, MAX_COMMITS_PER_BATCH - 1)),
  }
}

export function validateCatchUp(body: unknown): CatchUpBody {
  const object = expectObject(body, PAXOS_CATCH_UP)
  const after = field(object, 'after')
  return {
    partitions: expectArray(field(object, 'partitions'), `${PAXOS_CATCH_UP}.partitions`, MAX_CATCH_UP_PARTITIONS, (item, what) => {
      const p = expectObject(item, what)
      return { partition: expectUint(field(p, 'partition'), `${what}.partition`, MAX_CATCH_UP_PARTITIONS - 1), set: validateSet(field(p, 'set'), `${what}.set`) }
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
          sets: expectArray(field(b, 'sets'), `${what}.sets`, MAX_CATCH_UP_BEHIND_SETS, (set, setWhat) => validateSet(set, setWhat)),
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
  { code: 0x60, name: PAXOS_PREPARE, kind: 'request', validate: validatePrepare },
  { code: 0x61, name: PAXOS_PROMISE, kind: 'reply', validate: validatePromise },
  { code: 0x62, name: PAXOS_ACCEPT, kind: 'request', validate: validateAccept },
  { code: 0x63, name: PAXOS_ACCEPTED, kind: 'reply', validate: validateAccepted },
  { code: 0x64, name: PAXOS_CATCH_UP, kind: 'request', validate: validateCatchUp },
  { code: 0x65, name: PAXOS_CATCH_UP_REPLY, kind: 'reply', validate: validateCatchUpReply },
  { code: 0x66, name: PAXOS_ACCEPT_MANY, kind: 'request', validate: validateAcceptMany },
  { code: 0x67, name: PAXOS_ACCEPT_MANY_REPLY, kind: 'reply', validate: validateAcceptManyReply },
]
