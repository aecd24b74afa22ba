import { compareVersions, type NodeId } from '../clock/version.js'

/**
 * A CASPaxos ballot (Rystsov 2018, §2.1): (counter, proposer node id), totally ordered, node id
 * breaking ties. Counters are hybrid-logical-clock ticks of the proposer (lib/clock/hlc.ts):
 * ticks are never issued twice, not even across a restart (the clock starts above a durable
 * ceiling), so a proposer never uses one ballot for two different values — which Paxos needs and
 * a plain in-memory counter would not give after a crash.
 */
export interface Ballot {
  readonly counter: number
  readonly node: NodeId
}

/** Below every ballot a proposer issues: stands for a committed record taken from a store, whose ballot is unknown. */
export const ZERO_BALLOT: Ballot = { counter: 0, node: '0000000000000000' as NodeId }

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareBallots(a: Ballot, b: Ballot): number {
  return compareVersions({ hlc: a.counter, node: a.node }, { hlc: b.counter, node: b.node })
}

export function maxBallot(a: Ballot, b: Ballot): Ballot {
  return compareBallots(a, b) >= 0 ? a : b
}

export function formatBallot(ballot: Ballot): string {
  return `${ballot.counter}.${ballot.node}`
}
