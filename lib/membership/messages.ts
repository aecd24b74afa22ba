import { isNodeId, type NodeId } from '../clock/version.js'
import { parseHostPort } from '../config/address.js'
import { MAX_NODE_NAME_CHARS } from '../codec/transport-frames.js'
import type { PeerAddress } from '../transport/transport.js'

/**
 * Membership wire messages (SWIM with Lifeguard's nack) and the validators that turn a decoded,
 * untrusted frame body into a typed one. The type names are the wire type names.
 */

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'
export const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left']

/** One member as gossiped or exchanged in push-pull: enough to add a member never seen before. */
export interface MemberRecord {
  readonly id: NodeId
  readonly name: string
  /** Advertised peer address (`host:port`). */
  readonly peer: PeerAddress
  /** Advertised client API address (`host:port`). */
  readonly api: string
  readonly incarnation: number
  readonly state: MemberState
  /** The accuser of a suspect/dead update: distinct accusers confirm a suspicion (Lifeguard §4.2). */
  readonly from?: NodeId
}

export interface PingBody {
  readonly seq: number
  /** The member the sender means to probe: a different node now at that address ignores it. */
  readonly target: NodeId
  /** The sender itself, so a target that has not heard of it yet learns it. */
  readonly from?: MemberRecord
  readonly gossip: readonly MemberRecord[]
}

export interface AckBody {
  readonly seq: number
  readonly gossip: readonly MemberRecord[]
}

/** Ask the receiver to probe `target` for us and relay the ack (or a nack on its own timeout). */
export interface PingReqBody {
  readonly seq: number
  readonly target: NodeId
  readonly targetPeer: PeerAddress
}

/** Lifeguard §4.1: "I asked and heard nothing", proving the relay itself is healthy. */
export interface NackBody {
  readonly seq: number
}

export interface PushPullBody {
  readonly members: readonly MemberRecord[]
  /** Sent by a joining node, which does not know its seeds' ids yet. */
  readonly join: boolean
}

export interface PushPullReplyBody {
  readonly members: readonly MemberRecord[]
}

/** Periodic gossip fan-out carrying only queued updates (memberlist's gossip()). */
export interface GossipBody {
  readonly gossip: readonly MemberRecord[]
}

export type MembershipMessage =
  | { readonly type: 'ping'; readonly body: PingBody }
  | { readonly type: 'ack'; readonly body: AckBody }
  | { readonly type: 'pingReq'; readonly body: PingReqBody }
  | { readonly type: 'nack'; readonly body: NackBody }
  | { readonly type: 'pushPull'; readonly body: PushPullBody }
  | { readonly type: 'pushPullReply'; readonly body: PushPullReplyBody }
  | { readonly type: 'gossip'; readonly body: GossipBody }

export type MembershipMessageType = MembershipMessage['type']
export type MembershipBody<T extends MembershipMessageType> = Extract<MembershipMessage, { type: T }>['body']

/** Most updates one ping, ack or gossip message may carry (senders stay well below it). */
export const MAX_GOSSIP_PER_MESSAGE = 64
/** Most members one push-pull may carry: the largest cluster we accept to know about. */
export const MAX_MEMBERS = 8192
/**
 * Highest incarnation any member may claim. An honest member adds one per restart or refutation,
 * so it never gets near; far below 2^53, so a member claimed about at the cap can still refute
 * (incarnation + 1 stays a safe integer) — a claim at 2^53 − 1 once evicted members for good.
 */
export const MAX_INCARNATION = 2 ** 40
/** A member's name is the node name its handshake carries: one limit (lib/codec/transport-frames.ts). */
export const MAX_MEMBER_NAME_CHARS = MAX_NODE_NAME_CHARS
/** `[IPv6]:port` is at most 47 characters and a DNS name 253, plus `:65535`. */
export const MAX_ADDRESS_CHARS = 260

function fail(reason: string): never {
  throw new Error(reason)
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} is not an object`)
  return value as Record<string, unknown>
}

function asUint(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    fail(max === Number.MAX_SAFE_INTEGER ? `${what} is not a non-negative safe integer` : `${what} is not an integer in [0, ${max}]`)
  }
  return value
}

function asNodeIdField(value: unknown, what: string): NodeId {
  if (!isNodeId(value)) fail(`${what} is not a node id`)
  return value
}

function asAddress(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length > MAX_ADDRESS_CHARS || parseHostPort(value) === undefined) {
    fail(`${what} is not a host:port address`)
  }
  return value
}

function asArray(value: unknown, maxItems: number, what: string): unknown[] {
  if (!Array.isArray(value)) fail(`${what} is not an array`)
  if (value.length > maxItems) fail(`${what} has ${value.length} entries, more than ${maxItems}`)
  return value
}

function asMemberState(value: unknown, what: string): MemberState {
  if (!MEMBER_STATES.includes(value as MemberState)) fail(`${what} is not one of ${MEMBER_STATES.join(', ')}`)
  return value as MemberState
}

export function validateMemberRecord(value: unknown, what = 'member'): MemberRecord {
  const record = asObject(value, what)
  const name = record.name
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_MEMBER_NAME_CHARS) {
    fail(`${what}.name is not a string of 1 to ${MAX_MEMBER_NAME_CHARS} characters`)
  }
  const validated: MemberRecord = {
    id: asNodeIdField(record.id, `${what}.id`),
    name,
    peer: asAddress(record.peer, `${what}.peer`),
    api: asAddress(record.api, `${what}.api`),
    incarnation: asUint(record.incarnation, `${what}.incarnation`, MAX_INCARNATION),
    state: asMemberState(record.state, `${what}.state`),
  }
  return record.from === undefined ? validated : { ...validated, from: asNodeIdField(record.from, `${what}.from`) }
}

function validateRecords(value: unknown, maxItems: number, what: string): MemberRecord[] {
  return asArray(value, maxItems, what).map((item, index) => validateMemberRecord(item, `${what}[${index}]`))
}

function asBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') fail(`${what} is not a boolean`)
  return value
}

/**
 * Per message type: returns the typed body, or throws an Error whose message is a one-line reason
 * (the transport logs it and closes the link). Never trusts the shape of `body`.
 */
export const membershipBodyValidators: { readonly [T in MembershipMessageType]: (body: unknown) => MembershipBody<T> } = {
  ping(body) {
    const b = asObject(body, 'ping')
    const ping: PingBody = {
      seq: asUint(b.seq, 'ping.seq'),
      target: asNodeIdField(b.target, 'ping.target'),
      gossip: validateRecords(b.gossip, MAX_GOSSIP_PER_MESSAGE, 'ping.gossip'),
    }
    return b.from === undefined ? ping : { ...ping, from: validateMemberRecord(b.from, 'ping.from') }
  },
  ack(body) {
    const b = asObject(body, 'ack')
    return { seq: asUint(b.seq, 'ack.seq'), gossip: validateRecords(b.gossip, MAX_GOSSIP_PER_MESSAGE, 'ack.gossip') }
  },
  pingReq(body) {
    const b = asObject(body, 'pingReq')
    return {
      seq: asUint(b.seq, 'pingReq.seq'),
      target: asNodeIdField(b.target, 'pingReq.target'),
      targetPeer: asAddress(b.targetPeer, 'pingReq.targetPeer'),
    }
  },
  nack(body) {
    const b = asObject(body, 'nack')
    return { seq: asUint(b.seq, 'nack.seq') }
  },
  pushPull(body) {
    const b = asObject(body, 'pushPull')
    return { members: validateRecords(b.members, MAX_MEMBERS, 'pushPull.members'), join: asBoolean(b.join, 'pushPull.join') }
  },
  pushPullReply(body) {
    const b = asObject(body, 'pushPullReply')
    return { members: validateRecords(b.members, MAX_MEMBERS, 'pushPullReply.members') }
  },
  gossip(body) {
    const b = asObject(body, 'gossip')
    return { gossip: validateRecords(b.gossip, MAX_GOSSIP_PER_MESSAGE, 'gossip.gossip') }
  },
}

export const MEMBERSHIP_MESSAGE_TYPES = Object.keys(membershipBodyValidators) as MembershipMessageType[]

export function isMembershipMessageType(type: string): type is MembershipMessageType {
  return Object.hasOwn(membershipBodyValidators, type)
}

/** Validates a `{type, body}` pair from outside; throws with a one-line reason. */
export function validateMembershipMessage(type: string, body: unknown): MembershipMessage {
  if (!isMembershipMessageType(type)) fail(`unknown membership message type ${JSON.stringify(type)}`)
  return { type, body: membershipBodyValidators[type](body) } as MembershipMessage
}

/**
 * MessagePack size of a plain value (what msgpackr writes, within a couple of bytes per object):
 * cheap enough to run for every queued update, where encoding it would cost an allocation.
 */
export function estimateWireBytes(value: unknown): number {
  switch (typeof value) {
    case 'string': {
      const bytes = utf8Bytes(value)
      return bytes + (bytes < 0x20 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5)
    }
    case 'number':
      if (!Number.isInteger(value)) return 9
      if (value >= -0x20 && value < 0x80) return 1
      if (value >= -0x80 && value < 0x100) return 2
      if (value >= -0x8000 && value < 0x10000) return 3
      return value >= -0x80000000 && value < 0x100000000 ? 5 : 9
    case 'boolean':
      return 1
    case 'object': {
      if (value === null) return 1
      let total: number
      if (value instanceof Uint8Array) {
        total = value.length + (value.length < 0x100 ? 2 : value.length < 0x10000 ? 3 : 5)
      } else if (Array.isArray(value)) {
        total = value.length < 0x10 ? 1 : value.length < 0x10000 ? 3 : 5
        for (const item of value) total += estimateWireBytes(item)
      } else {
        total = 3
        const object = value as Record<string, unknown>
        for (const key in object) {
          const item = object[key]
          if (item !== undefined) total += estimateWireBytes(key) + estimateWireBytes(item)
        }
      }
      return total
    }
    default:
      return 1
  }
}

function utf8Bytes(text: string): number {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    // A surrogate pair counts 3 + 1: four bytes for the code point.
    if (code >= 0x80) bytes += code < 0x800 ? 1 : (code & 0xfc00) === 0xdc00 ? 0 : 2
  }
  return bytes
}
