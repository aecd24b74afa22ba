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
 * Accept: take `record` at `ballot` unless a higher ballot was promised, and promise the
 * proposer's next ballot (nextBallot) with it — Gryadka's one-round-trip optimisation (the
 * paper's §2.2.1): a proposer that a quorum acknowledged at `ballot` holds a quorum of promises
 * for the next one, so its next change of the key needs no prepare; any other proposer's prepare
 * must go above it, and then the proposer's next accept is refused.
 */
export function decideAccept(state: AcceptorState | undefined, ballot: Ballot, record: StoredRecord, history: readonly Version[]): Decision<AcceptReply> {
  if (state !== undefined && compareBallots(ballot, state.promised) < 0) return { reply: { ok: false, promised: state.promised } }
  return { next: { promised: nextBallot(ballot), accepted: { ballot, record, history } }, reply: { ok: true } }
}

/** The ballot an accept at `ballot` promises as well: the same proposer, one tick on. */
export function nextBallot(ballot: Ballot): Ballot {
  return { counter: ballot.counter + 1, node: ballot.node }
}

/**
 * Merges another acceptor's state of the key into this one's (catching up after an acceptor-set
 * change, lib/paxos/catch-up.ts): the higher promise, and the accepted value of the higher
 * ballot. Copying a (ballot, value) pair some acceptor accepted is safe at any time: it was
 * proposed at that ballot, and a value chosen at a lower ballot is carried by every pair above
 * it (docs/consistency.md "Acceptor-set changes").
 */
export function mergeStates(local: AcceptorState | undefined, remote: AcceptorState): Decision<boolean> {
  if (local === undefined) return { next: remote, reply: true }
  const promised = compareBallots(remote.promised, local.promised) > 0 ? remote.promised : local.promised
  const remoteHigher = remote.accepted !== undefined &&
    (local.accepted === undefined || compareBallots(remote.accepted.ballot, local.accepted.ballot) > 0)
  const accepted = remoteHigher ? remote.accepted : local.accepted
  if (promised === local.promised && accepted === local.accepted) return { reply: false }
  return { next: { promised, ...(accepted !== undefined ? { accepted } : {}) }, reply: true }
}
