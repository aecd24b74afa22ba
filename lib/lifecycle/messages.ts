import { isNodeId, type NodeId } from '../clock/version.js'
import type { FrameType } from '../codec/frames.js'
import { MalformedBodyError, expectArray, expectBoolean, expectObject, expectOneOf, expectString, expectUint, field } from '../codec/validate.js'
import { MAX_MEMBER_NAME_CHARS } from '../membership/messages.js'

/**
 * Node lifecycle frames (docs/protocol.md "Node lifecycle"): the cluster-wide records of removed
 * and leaving members, spread by push and push-pull over the authenticated peer links, and the
 * progress of the repairs a removal starts, which the node an operator asks gathers from its peers.
 */

export const LIFECYCLE_GOSSIP = 'lifecycleGossip'
export const LIFECYCLE_PROGRESS = 'lifecycleProgress'
export const LIFECYCLE_PROGRESS_REPLY = 'lifecycleProgressReply'

/**
 * Records one message (and the registry) holds: removed ids are kept for good, so this bounds how
 * many members a cluster can ever remove (a replaced machine is one record, 100 bytes or so).
 */
export const MAX_LIFECYCLE_RECORDS = 1024

/**
 * `hearsay members remove`: the member is out of placement on every node for good. Written once
 * by the node the operator asked (`by`), never changed; a removed id that comes back is told so.
 */
export interface RemovalRecord {
  readonly kind: 'removed'
  readonly id: NodeId
  readonly name: string
  /** The member that took the operator's request. */
  readonly by: NodeId
  readonly byName: string
  /** Wall-clock ms of the request at `by`. */
  readonly atMs: number
}

/**
 * `hearsay decommission`: the member streams its partitions to their next owners, which take its
 * writes too meanwhile (pending replicas). Only the member itself writes its leaving record;
 * `active: false` (a newer record) cancels one a restart interrupted.
 */
export interface LeavingRecord {
  readonly kind: 'leaving'
  readonly id: NodeId
  readonly name: string
  /** Wall-clock ms the decommission started (orders a member's own records). */
  readonly startedAtMs: number
  readonly active: boolean
}

export type LifecycleRecord = RemovalRecord | LeavingRecord

export interface LifecycleGossipBody {
  readonly records: readonly LifecycleRecord[]
  /** Push-pull: the receiver answers with its own records when it holds any the sender lacks. */
  readonly reply: boolean
}

/** The request carries nothing: the answer is the peer's repair progress per removed member. */
export type LifecycleProgressBody = Record<string, never>

/** One node's share of re-replicating the partitions a removed member held. */
export interface RepairProgress {
  /** The removed member. */
  readonly id: NodeId
  /** Partitions this node became a replica of through the removal. */
  readonly gained: number
  /** Of those, the ones not yet synced with every other alive replica. */
  readonly pending: number
  /** Records this node received (pulled) and sent (pushed) for them, and their bytes. */
  readonly keysMoved: number
  readonly bytesMoved: number
}

export interface LifecycleProgressReplyBody {
  readonly repairs: readonly RepairProgress[]
}

const MAX_COUNT = 2 ** 32

function nodeId(value: unknown, what: string): NodeId {
  if (!isNodeId(value)) throw new MalformedBodyError(`${what} is not a node id (16 lowercase hex characters)`)
  return value
}

function validateRecord(value: unknown, what: string): LifecycleRecord {
  const object = expectObject(value, what)
  const kind = expectOneOf(field(object, 'kind'), `${what}.kind`, ['removed', 'leaving'] as const)
  const id = nodeId(field(object, 'id'), `${what}.id`)
  const name = expectString(field(object, 'name'), `${what}.name`, MAX_MEMBER_NAME_CHARS)
  if (kind === 'removed') {
    return {
      kind, id, name,
      by: nodeId(field(object, 'by'), `${what}.by`),
      byName: expectString(field(object, 'byName'), `${what}.byName`, MAX_MEMBER_NAME_CHARS),
      atMs: expectUint(field(object, 'atMs'), `${what}.atMs`),
    }
  }
  return { kind, id, name, startedAtMs: expectUint(field(object, 'startedAtMs'), `${what}.startedAtMs`), active: expectBoolean(field(object, 'active'), `${what}.active`) }
}

export function validateLifecycleGossip(body: unknown): LifecycleGossipBody {
  const object = expectObject(body, LIFECYCLE_GOSSIP)
  return {
    records: expectArray(field(object, 'records'), `${LIFECYCLE_GOSSIP}.records`, MAX_LIFECYCLE_RECORDS, validateRecord),
    reply: expectBoolean(field(object, 'reply'), `${LIFECYCLE_GOSSIP}.reply`),
  }
}

export function validateLifecycleProgress(body: unknown): LifecycleProgressBody {
  expectObject(body, LIFECYCLE_PROGRESS)
  return {}
}

function validateRepair(value: unknown, what: string): RepairProgress {
  const object = expectObject(value, what)
  return {
    id: nodeId(field(object, 'id'), `${what}.id`),
    gained: expectUint(field(object, 'gained'), `${what}.gained`, MAX_COUNT),
    pending: expectUint(field(object, 'pending'), `${what}.pending`, MAX_COUNT),
    keysMoved: expectUint(field(object, 'keysMoved'), `${what}.keysMoved`),
    bytesMoved: expectUint(field(object, 'bytesMoved'), `${what}.bytesMoved`),
  }
}

export function validateLifecycleProgressReply(body: unknown): LifecycleProgressReplyBody {
  const object = expectObject(body, LIFECYCLE_PROGRESS_REPLY)
  return { repairs: expectArray(field(object, 'repairs'), `${LIFECYCLE_PROGRESS_REPLY}.repairs`, MAX_LIFECYCLE_RECORDS, validateRepair) }
}

/** This protocol's frames, for the frame table (lib/codec/frames.ts). */
export const LIFECYCLE_FRAMES: readonly FrameType[] = [
  { code: 0x6a, name: LIFECYCLE_GOSSIP, kind: 'oneway', validate: validateLifecycleGossip },
  { code: 0x6b, name: LIFECYCLE_PROGRESS, kind: 'request', validate: validateLifecycleProgress },
  { code: 0x6c, name: LIFECYCLE_PROGRESS_REPLY, kind: 'reply', validate: validateLifecycleProgressReply },
]
