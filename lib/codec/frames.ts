import {
  encodeReplicaWrite, encodeReplicaWriteReply, validateReplicaRead, validateReplicaReadReply, validateReplicaScan, validateReplicaScanReply,
  validateReplicaWrite, validateReplicaWriteReply, type ReplicaWriteBody, type ReplicaWriteReplyBody,
} from '../replication/messages.js'
import { membershipBodyValidators } from '../membership/messages.js'
import {
  validateSyncLeaves, validateSyncLeavesReply, validateSyncNodes, validateSyncNodesReply,
  validateSyncPush, validateSyncPushReply, validateSyncRoots, validateSyncRootsReply,
} from '../antientropy/messages.js'
import { validateError, validateHello, validateProof, validateRefuse, validateWelcome } from './transport-frames.js'
import { CLOCK_FRAMES } from '../clock/messages.js'
import { WATCH_FRAMES } from '../watch/messages.js'
import { PAXOS_FRAMES } from '../paxos/messages.js'
import { DASHBOARD_FRAMES } from '../dashboard/messages.js'
import { LIFECYCLE_FRAMES } from '../lifecycle/messages.js'

/**
 * The one list of every frame type on the wire: code, name, kind and body validator.
 * Adding a protocol message is one line in FRAME_TYPES (docs/protocol.md lists them too).
 *
 * Kinds fix where a type may appear, and the codec rejects a frame anywhere else:
 * - handshake: only before a link is established, requestId 0 (hello, welcome, proof, refuse);
 * - oneway:    a message that expects no answer, requestId 0;
 * - request:   a message that expects an answer, requestId > 0;
 * - reply:     an answer, only inside a `response` frame;
 * - envelope:  `response` (carries a reply) and `error`, with the requestId of the request.
 */
export type FrameKind = 'handshake' | 'oneway' | 'request' | 'reply' | 'envelope'

/** Turns an untrusted decoded body into a typed one, or throws an Error with a one-line reason. */
export type BodyValidator = (body: unknown) => unknown

export interface FrameType {
  /** Wire code: 1..127, so it encodes as a single MessagePack byte. */
  readonly code: number
  readonly name: string
  readonly kind: FrameKind
  readonly validate: BodyValidator
  /**
   * The body's wire form when it differs from the typed body (a compact array, say); `validate`
   * reads that form back. Absent: the body travels as it is.
   */
  readonly encode?: (body: unknown) => unknown
}

/** The envelope types the codec builds and takes apart itself. */
export const RESPONSE_FRAME = 'response'
export const ERROR_FRAME = 'error'

const MAX_FRAME_CODE = 127

export const FRAME_TYPES: readonly FrameType[] = [
  // Transport: handshake (lib/transport/handshake.ts) and answers to requests.
  { code: 0x01, name: 'hello', kind: 'handshake', validate: validateHello },
  { code: 0x02, name: 'welcome', kind: 'handshake', validate: validateWelcome },
  { code: 0x03, name: 'proof', kind: 'handshake', validate: validateProof },
  { code: 0x04, name: 'refuse', kind: 'handshake', validate: validateRefuse },
  // The response body is [replyCode, replyBody]; the codec validates it by the reply's type.
  { code: 0x05, name: RESPONSE_FRAME, kind: 'envelope', validate: body => body },
  { code: 0x06, name: ERROR_FRAME, kind: 'envelope', validate: validateError },
  // Membership (lib/membership/messages.ts): SWIM correlates by seq, so every message is one-way.
  { code: 0x10, name: 'ping', kind: 'oneway', validate: membershipBodyValidators.ping },
  { code: 0x11, name: 'ack', kind: 'oneway', validate: membershipBodyValidators.ack },
  { code: 0x12, name: 'pingReq', kind: 'oneway', validate: membershipBodyValidators.pingReq },
  { code: 0x13, name: 'nack', kind: 'oneway', validate: membershipBodyValidators.nack },
  { code: 0x14, name: 'pushPull', kind: 'oneway', validate: membershipBodyValidators.pushPull },
  { code: 0x15, name: 'pushPullReply', kind: 'oneway', validate: membershipBodyValidators.pushPullReply },
  { code: 0x16, name: 'gossip', kind: 'oneway', validate: membershipBodyValidators.gossip },
  // Replication (lib/replication/messages.ts): a coordinator asks replicas to apply or read.
  { code: 0x20, name: 'replicaWrite', kind: 'request', validate: validateReplicaWrite, encode: body => encodeReplicaWrite(body as ReplicaWriteBody) },
  { code: 0x21, name: 'replicaWriteReply', kind: 'reply', validate: validateReplicaWriteReply, encode: body => encodeReplicaWriteReply(body as ReplicaWriteReplyBody) },
  { code: 0x22, name: 'replicaRead', kind: 'request', validate: validateReplicaRead },
  { code: 0x23, name: 'replicaReadReply', kind: 'reply', validate: validateReplicaReadReply },
  { code: 0x24, name: 'replicaScan', kind: 'request', validate: validateReplicaScan },
  { code: 0x25, name: 'replicaScanReply', kind: 'reply', validate: validateReplicaScanReply },
  // Anti-entropy (lib/antientropy/messages.ts): a sync session compares trees, then moves records.
  { code: 0x30, name: 'syncRoots', kind: 'request', validate: validateSyncRoots },
  { code: 0x31, name: 'syncRootsReply', kind: 'reply', validate: validateSyncRootsReply },
  { code: 0x32, name: 'syncNodes', kind: 'request', validate: validateSyncNodes },
  { code: 0x33, name: 'syncNodesReply', kind: 'reply', validate: validateSyncNodesReply },
  { code: 0x34, name: 'syncLeaves', kind: 'request', validate: validateSyncLeaves },
  { code: 0x35, name: 'syncLeavesReply', kind: 'reply', validate: validateSyncLeavesReply },
  { code: 0x38, name: 'syncPush', kind: 'request', validate: validateSyncPush },
  { code: 0x39, name: 'syncPushReply', kind: 'reply', validate: validateSyncPushReply },
  // Clock offset probes (lib/clock/messages.ts): the offset monitor asks peers for their wall clock.
  ...CLOCK_FRAMES,
  // Watch feeds (lib/watch/messages.ts): a node long-polls a replica's change log for partitions it does not hold.
  ...WATCH_FRAMES,
  // CASPaxos (lib/paxos/messages.ts): linearizable operations, a key's replicas as acceptors.
  ...PAXOS_FRAMES,
  // Node summaries (lib/dashboard/messages.ts): the dashboard asks each peer how it sees the cluster.
  ...DASHBOARD_FRAMES,
  // Node lifecycle (lib/lifecycle/messages.ts): removal and leaving records, removal repair progress.
  ...LIFECYCLE_FRAMES,
]

/** Frame types by code and by name; construction asserts codes and names are unique. */
export class FrameRegistry {
  readonly #byCode = new Map<number, FrameType>()
  readonly #byName = new Map<string, FrameType>()

  constructor(types: readonly FrameType[]) {
    for (const type of types) {
      if (!Number.isInteger(type.code) || type.code < 1 || type.code > MAX_FRAME_CODE) {
        throw new RangeError(`frame type ${type.name} has code ${type.code}, outside 1..${MAX_FRAME_CODE}`)
      }
      if (this.#byCode.has(type.code)) throw new Error(`frame code ${type.code} is used twice`)
      if (this.#byName.has(type.name)) throw new Error(`frame type name ${type.name} is used twice`)
      this.#byCode.set(type.code, type)
      this.#byName.set(type.name, type)
    }
    for (const name of [RESPONSE_FRAME, ERROR_FRAME]) {
      if (this.#byName.get(name)?.kind !== 'envelope') throw new Error(`frame registry lacks the ${name} envelope`)
    }
  }

  byCode(code: number): FrameType | undefined {
    return this.#byCode.get(code)
  }

  byName(name: string): FrameType | undefined {
    return this.#byName.get(name)
  }

  /** The type called `name`; an unknown name is a programming error. */
  named(name: string): FrameType {
    const type = this.#byName.get(name)
    if (type === undefined) throw new TypeError(`unknown frame type ${JSON.stringify(name)}; add it to FRAME_TYPES in lib/codec/frames.ts`)
    return type
  }

  types(): IterableIterator<FrameType> {
    return this.#byCode.values()
  }
}

export const frameRegistry = new FrameRegistry(FRAME_TYPES)
