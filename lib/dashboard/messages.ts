import type { FrameType } from '../codec/frames.js'
import { MalformedBodyError, expectArray, expectObject, expectOneOf, expectString, expectUint, field } from '../codec/validate.js'
import { MAX_MEMBER_NAME_CHARS } from '../membership/messages.js'

/**
 * Node summary frames (docs/protocol.md "Dashboard"): the dashboard of one node asks each alive
 * peer how it sees the cluster, over the same authenticated peer links the protocols use, so the
 * page needs no second set of credentials or certificates to reach the other members.
 */

export const NODE_SUMMARY = 'nodeSummary'
export const NODE_SUMMARY_REPLY = 'nodeSummaryReply'

/** Members one summary lists; a larger cluster shows the first ones by name. */
export const MAX_SUMMARY_MEMBERS = 256
/** Sparkline points per summary (the sampler's ring, see request-sampler.ts). */
export const MAX_SUMMARY_SAMPLES = 240
/** Partition numbers one summary lists per kind (hinted, syncing); Q is at most 65,536. */
export const MAX_SUMMARY_PARTITIONS = 65_536
const MAX_ID_CHARS = 64
const MAX_TEXT_CHARS = 64

export const NODE_STATUSES = ['starting', 'ok', 'repairing', 'leaving', 'skewed'] as const
export const MEMBER_STATES = ['alive', 'suspect', 'dead', 'left'] as const

/** A member as the summarising node sees it. */
export interface MemberSight {
  readonly id: string
  readonly name: string
  readonly state: typeof MEMBER_STATES[number]
  readonly incarnation: number
  /** Round trip of the summarising node's last acknowledged probe of it; null: none yet (or itself). */
  readonly rttMs: number | null
}

export interface SummarySample {
  readonly atMs: number
  readonly opsPerSecond: number
  readonly p99Ms: number | null
}

export interface NodeSummary {
  readonly id: string
  readonly name: string
  /** Package version of the daemon. */
  readonly version: string
  readonly status: typeof NODE_STATUSES[number]
  readonly uptimeSeconds: number
  readonly keys: number
  readonly storeBytes: number
  readonly hintsPending: number
  /** /status digest: equal on two nodes exactly when they hold the same records. */
  readonly digest: string
  readonly members: readonly MemberSight[]
  readonly samples: readonly SummarySample[]
  /** Partitions this node holds hints for (writes waiting for a replica that was down). */
  readonly hintedPartitions: readonly number[]
  /** Partitions in the anti-entropy session running now, and those still to repair after a long absence. */
  readonly syncingPartitions: readonly number[]
}

/** The request carries nothing: the answer is the peer's whole summary. */
export type NodeSummaryBody = Record<string, never>

function expectFinite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new MalformedBodyError(`${what} is not a finite non-negative number`)
  return value
}

function nullable<T>(check: (value: unknown, what: string) => T): (value: unknown, what: string) => T | null {
  return (value, what) => value === null ? null : check(value, what)
}

const partitionNumber = (value: unknown, what: string): number => expectUint(value, what, MAX_SUMMARY_PARTITIONS - 1)

function validateMemberSight(value: unknown, what: string): MemberSight {
  const object = expectObject(value, what)
  return {
    id: expectString(field(object, 'id'), `${what}.id`, MAX_ID_CHARS, 1),
    name: expectString(field(object, 'name'), `${what}.name`, MAX_MEMBER_NAME_CHARS),
    state: expectOneOf(field(object, 'state'), `${what}.state`, MEMBER_STATES),
    incarnation: expectUint(field(object, 'incarnation'), `${what}.incarnation`),
    rttMs: nullable(expectFinite)(field(object, 'rttMs'), `${what}.rttMs`),
  }
}

function validateSample(value: unknown, what: string): SummarySample {
  const object = expectObject(value, what)
  return {
    atMs: expectUint(field(object, 'atMs'), `${what}.atMs`),
    opsPerSecond: expectFinite(field(object, 'opsPerSecond'), `${what}.opsPerSecond`),
    p99Ms: nullable(expectFinite)(field(object, 'p99Ms'), `${what}.p99Ms`),
  }
}

export function validateNodeSummary(body: unknown): NodeSummaryBody {
  expectObject(body, NODE_SUMMARY)
  return {}
}

export function validateNodeSummaryReply(body: unknown): NodeSummary {
  const what = NODE_SUMMARY_REPLY
  const object = expectObject(body, what)
  return {
    id: expectString(field(object, 'id'), `${what}.id`, MAX_ID_CHARS, 1),
    name: expectString(field(object, 'name'), `${what}.name`, MAX_MEMBER_NAME_CHARS),
    version: expectString(field(object, 'version'), `${what}.version`, MAX_TEXT_CHARS),
    status: expectOneOf(field(object, 'status'), `${what}.status`, NODE_STATUSES),
    uptimeSeconds: expectUint(field(object, 'uptimeSeconds'), `${what}.uptimeSeconds`),
    keys: expectUint(field(object, 'keys'), `${what}.keys`),
    storeBytes: expectUint(field(object, 'storeBytes'), `${what}.storeBytes`),
    hintsPending: expectUint(field(object, 'hintsPending'), `${what}.hintsPending`),
    digest: expectString(field(object, 'digest'), `${what}.digest`, MAX_TEXT_CHARS),
    members: expectArray(field(object, 'members'), `${what}.members`, MAX_SUMMARY_MEMBERS, validateMemberSight),
    samples: expectArray(field(object, 'samples'), `${what}.samples`, MAX_SUMMARY_SAMPLES, validateSample),
    hintedPartitions: expectArray(field(object, 'hintedPartitions'), `${what}.hintedPartitions`, MAX_SUMMARY_PARTITIONS, partitionNumber),
    syncingPartitions: expectArray(field(object, 'syncingPartitions'), `${what}.syncingPartitions`, MAX_SUMMARY_PARTITIONS, partitionNumber),
  }
}

/** This protocol's frames, for the frame table (lib/codec/frames.ts). */
export const DASHBOARD_FRAMES: readonly FrameType[] = [
  { code: 0x68, name: NODE_SUMMARY, kind: 'request', validate: validateNodeSummary },
  { code: 0x69, name: NODE_SUMMARY_REPLY, kind: 'reply', validate: validateNodeSummaryReply },
]
