import type { Version } from '../clock/version.js'
import type { StoredRecord } from '../store/record.js'
import { compareBallots, type Ballot } from './ballot.js'

/**
 * One acceptor's state for one key and the two CASPaxos acceptor rules as pure functions
 * (Rystsov 2018, §2.1; Gryadka's acceptor). The caller persists the next state durably before it
 * answers (lib/paxos/acceptor-store.ts), so a restarted acceptor keeps every promise it gave.
 */
export interface Accepted {
  readonly ballot: Ballot
  /** The register's value as of that ballot: a strong record (value null = absent). */
  readonly record: StoredRecord
  /**
   * Versions of the last changes that led to this value, oldest first, its own last (at most
   * MAX_HISTORY): a proposer whose earlier accept may have landed looks for its version here to
   * tell "applied" from "not applied" (proposer.ts). Empty for values taken from a store.
   */
  readonly history: readonly Version[]
}

/** Changes an accepted value remembers (Accepted.history). */
export const MAX_HISTORY = 16

export interface AcceptorState {
  /** The highest ballot this acceptor promised (or accepted at). */
  readonly promised: Ballot
  /** The value with the highest ballot this acceptor accepted; undefined = none yet. */
  readonly accepted?: Accepted
}

export type Decision<R> = { readonly next?: AcceptorState; readonly reply: R }

export type PrepareReply =
  | { readonly ok: true; readonly accepted: Accepted | undefined }
  | { readonly ok: false; readonly promised: Ballot }

export type AcceptReply = { readonly ok: true } | { readonly ok: false; readonly promised: Ballot }

/**
 * Prepare: promise `ballot` if it is above every ballot promised so far, and answer the value of
 * the highest accepted ballot. An equal ballot is refused too, so that a second prepare with the
 * same ballot cannot slip under an accept in flight.
 */
export function decidePrepare(state: AcceptorState | undefined, ballot: Ballot): Decision<PrepareReply> {
  if (state !== undefined && compareBallots(ballot, state.promised) <= 0) return { reply: { ok: false, promised: state.promised } }
  return {
    next: { promised: ballot, ...(state?.accepted !== undefined ? { accepted: state.accepted } : {}) },
    reply: { ok: true, accepted: state?.accepted },
  }
}

/**
 * Accept: take `record` at `ballot` unless a higher ballot was promised. With `previous` (the
 * one-round-trip path, §2.2.1): only if this acceptor's promise and accepted value are both still
 * exactly at `previous`, i.e. nothing happened since the proposer's last accept here — then this
 * accept is the prepare and the accept of `ballot` in one, and the proposer's cached value is
 * the one a prepare would have answered.
 */
export function decideAccept(state: AcceptorState | undefined, ballot: Ballot, record: StoredRecord, history: readonly Version[], previous?: Ballot): Decision<AcceptReply> {
  const refuse: Decision<AcceptReply> = { reply: { ok: false, promised: state?.promised ?? ballot } }
  if (previous !== undefined) {
    if (state?.accepted === undefined) return refuse
    if (compareBallots(state.promised, previous) !== 0 || compareBallots(state.accepted.ballot, previous) !== 0) return refuse
    if (compareBallots(ballot, previous) <= 0) return refuse
  } else if (state !== undefined && compareBallots(ballot, state.promised) < 0) {
    return refuse
  }
  return { next: { promised: ballot, accepted: { ballot, record, history } }, reply: { ok: true } }
}
