import { expectArray, expectBoolean, expectBytes, expectObject, expectString, expectUint, field, MalformedBodyError, optional } from '../codec/validate.js'
import { asNodeId } from '../clock/version.js'
import { DEPTH, DIGEST_WIDTHS, FANOUT, levelWidth, type DigestWidth } from '../merkle/tree.js'
import { MAX_WIRE_KEY_CHARS, MAX_WIRE_VALUE_BYTES, type WireEntry } from '../replication/messages.js'
import { MAX_PARTITION_COUNT } from '../placement/partitions.js'

/**
 * Anti-entropy session frames (docs/protocol.md "Anti-entropy"). The node that starts a session
 * asks, the peer answers from its own trees and store; every name starts with `sync` so the
 * transport's byte counter can tell anti-entropy traffic from the rest.
 *
 * Digests travel as packed byte strings (big-endian), not MessagePack integers: a uint64 does
 * not fit a JS number, and packed they cost exactly their width. Below the root they may be
 * salted and truncated to 2 or 4 bytes (lib/merkle/tree.ts projectDigests). Records travel as
 * arrays `[key, value | nil, hlc, node id (8 bytes), expiresAtMs?]`: a map with field names and a
 * hex node id would add ~30 bytes to every record moved.
 */

export const SYNC_TYPE_PREFIX = 'sync'
export const DIGEST_BYTES = 8
/** Version in a key list: hlc (uint64 BE) ‖ node id (8 bytes), as in the store's segment index. */
export const VERSION_BYTES = 16
/** Partitions one syncRoots may ask about. */
export const MAX_PARTITIONS_PER_REQUEST = 4096
/** Leaves one syncLeaves may ask about. */
export const MAX_BUCKETS_PER_REQUEST = 256
/** (key, version) pairs one syncLeaves may carry, and records or indices its reply may carry. */
export const MAX_KEYS_PER_LEAVES = 65_536
/** Records one syncPush may carry. */
export const MAX_RECORDS_PER_BATCH = 1024
/** Parents one syncNodes may ask about: a whole level above the leaves. */
export const MAX_PARENTS_PER_REQUEST = levelWidth(DEPTH - 1)

/**
 * `repair`: the asker is repairing after an absence longer than the tombstone grace. A peer that
 * is repairing too answers only such requests (see lib/antientropy/responder.ts): two replicas
 * that were both away can repair from each other, where neither may serve a normal session.
 */
export interface RepairFlag { readonly repair?: true }
export interface SyncRootsBody extends RepairFlag { readonly partitions: readonly number[] }
/** One root per asked partition, in order (0 = the peer holds nothing of it). */
export interface SyncRootsReplyBody { readonly roots: Uint8Array }
/**
 * Digests of every child (FANOUT each) of `parents`, which sit at depth - 1, projected with
 * `salt` to `width` bytes each.
 */
export interface SyncNodesBody extends RepairFlag { readonly partition: number; readonly depth: number; readonly parents: readonly number[]; readonly salt: number; readonly width: DigestWidth }
export interface SyncNodesReplyBody { readonly digests: Uint8Array }
/**
 * The asker's own (key, version) list for some differing leaves (versions packed, VERSION_BYTES
 * each): the peer compares it with its own and answers with the difference in one round trip.
 */
export interface SyncLeavesBody extends RepairFlag { readonly partition: number; readonly buckets: readonly number[]; readonly keys: readonly string[]; readonly versions: Uint8Array }
/**
 * For the first `done` buckets: `records` the peer holds newer or the asker lacks (those that
 * travel); indices into the asked `keys` of those the peer holds `older`, lacks (`missing`), or
 * holds newer but no longer lets travel (`superseded`: a tombstone or expiry past the grace). A
 * reply stops at a bucket boundary once its records fill the budget; the asker asks again for the
 * remaining buckets.
 */
export interface SyncLeavesReplyBody {
  readonly records: readonly SyncRecord[]
  readonly older: readonly number[]
  readonly missing: readonly number[]
  readonly superseded: readonly number[]
  readonly done: number
  /**
   * XOR of the record hashes of what the answering node holds in these leaves past its grace
   * and did not send (the asker lacks the key or holds it older): the asker discounts them when
   * it judges whether the partition now agrees (lib/antientropy/session.ts). 8 bytes; absent = 0.
   */
  readonly heldBack?: Uint8Array
}
export interface SyncPushBody { readonly entries: readonly SyncRecord[] }

/** A record on the sync wire: `[key, value | null (tombstone), hlc, node id bytes, expiresAtMs?]`. */
export type SyncRecord = readonly [string, Uint8Array | null, number, Uint8Array] | readonly [string, Uint8Array | null, number, Uint8Array, number]

const NODE_ID_BYTES = 8

export function toSyncRecord(entry: WireEntry): SyncRecord {
  const node = Buffer.from(entry.node, 'hex')
  return entry.expiresAtMs === undefined ? [entry.key, entry.value, entry.hlc, node] : [entry.key, entry.value, entry.hlc, node, entry.expiresAtMs]
}

export function fromSyncRecord(record: SyncRecord): WireEntry {
  const [key, value, hlc, node, expiresAtMs] = record
  const entry = { key, value, hlc, node: asNodeId(Buffer.from(node.buffer, node.byteOffset, node.byteLength).toString('hex')) }
  return expiresAtMs === undefined ? entry : { ...entry, expiresAtMs }
}

function validateSyncRecord(value: unknown, what: string): SyncRecord {
  if (!Array.isArray(value) || value.length < 4 || value.length > 5) throw new MalformedBodyError(`${what} is not [key, value, hlc, node, expiresAtMs?]`)
  const key = keyItem(value[0], `${what}.key`)
  const bytes = value[1] === null ? null : expectBytes(value[1], `${what}.value`, MAX_WIRE_VALUE_BYTES)
  const hlc = expectUint(value[2], `${what}.hlc`)
  const node = expectBytes(value[3], `${what}.node`, NODE_ID_BYTES, NODE_ID_BYTES)
  if (value.length === 4) return [key, bytes, hlc, node]
  return [key, bytes, hlc, node, expectUint(value[4], `${what}.expiresAtMs`)]
}
export interface SyncPushReplyBody { readonly applied: readonly boolean[] }

export function isAntiEntropyType(type: string): boolean {
  return type.startsWith(SYNC_TYPE_PREFIX)
}

/** Digests of `width` bytes each (projected ones fit), big-endian. */
export function packDigests(digests: readonly bigint[], width: DigestWidth = DIGEST_BYTES): Uint8Array {
  const bytes = Buffer.allocUnsafe(digests.length * width)
  digests.forEach((digest, i) => {
    if (width === 8) bytes.writeBigUInt64BE(digest, i * width)
    else bytes.writeUIntBE(Number(digest), i * width, width)
  })
  return bytes
}

export function unpackDigests(bytes: Uint8Array, expected: number, what: string, width: DigestWidth = DIGEST_BYTES): bigint[] {
  if (bytes.byteLength !== expected * width) throw new MalformedBodyError(`${what} has ${bytes.byteLength} bytes, expected ${expected} digests of ${width}`)
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Array.from({ length: expected }, (_, i) => width === 8 ? buffer.readBigUInt64BE(i * width) : BigInt(buffer.readUIntBE(i * width, width)))
}

const uint = (max: number) => (value: unknown, what: string): number => expectUint(value, what, max)
const partitionField = (object: Readonly<Record<string, unknown>>, what: string): number => expectUint(field(object, 'partition'), `${what}.partition`, MAX_PARTITION_COUNT - 1)
const keyItem = (value: unknown, what: string): string => expectString(value, what, MAX_WIRE_KEY_CHARS, 1)

export function validateSyncRoots(body: unknown): SyncRootsBody {
  const object = expectObject(body, 'syncRoots')
  return { partitions: expectArray(field(object, 'partitions'), 'syncRoots.partitions', MAX_PARTITIONS_PER_REQUEST, uint(MAX_PARTITION_COUNT - 1)), ...repairFlag(object, 'syncRoots') }
}

function repairFlag(object: Readonly<Record<string, unknown>>, what: string): RepairFlag {
  const repair = optional(field(object, 'repair'), `${what}.repair`, expectBoolean)
  return repair === true ? { repair } : {}
}

export function validateSyncRootsReply(body: unknown): SyncRootsReplyBody {
  const object = expectObject(body, 'syncRootsReply')
  return { roots: expectBytes(field(object, 'roots'), 'syncRootsReply.roots', MAX_PARTITIONS_PER_REQUEST * DIGEST_BYTES) }
}

export function validateSyncNodes(body: unknown): SyncNodesBody {
  const object = expectObject(body, 'syncNodes')
  const depth = expectUint(field(object, 'depth'), 'syncNodes.depth', DEPTH)
  if (depth < 1) throw new MalformedBodyError('syncNodes.depth must be at least 1 (roots come from syncRoots)')
  const parentWidth = levelWidth(depth - 1)
  const width = expectUint(field(object, 'width'), 'syncNodes.width', DIGEST_BYTES)
  if (!(DIGEST_WIDTHS as readonly number[]).includes(width)) throw new MalformedBodyError(`syncNodes.width must be one of ${DIGEST_WIDTHS.join(', ')}`)
  return {
    partition: partitionField(object, 'syncNodes'),
    depth,
    parents: expectArray(field(object, 'parents'), 'syncNodes.parents', MAX_PARENTS_PER_REQUEST, uint(parentWidth - 1)),
    salt: expectUint(field(object, 'salt'), 'syncNodes.salt', 2 ** 32 - 1),
    width: width as DigestWidth,
    ...repairFlag(object, 'syncNodes'),
  }
}

export function validateSyncNodesReply(body: unknown): SyncNodesReplyBody {
  const object = expectObject(body, 'syncNodesReply')
  return { digests: expectBytes(field(object, 'digests'), 'syncNodesReply.digests', MAX_PARENTS_PER_REQUEST * FANOUT * DIGEST_BYTES) }
}

export function validateSyncLeaves(body: unknown): SyncLeavesBody {
  const object = expectObject(body, 'syncLeaves')
  const keys = expectArray(field(object, 'keys'), 'syncLeaves.keys', MAX_KEYS_PER_LEAVES, keyItem)
  const versions = expectBytes(field(object, 'versions'), 'syncLeaves.versions', MAX_KEYS_PER_LEAVES * VERSION_BYTES)
  if (versions.byteLength !== keys.length * VERSION_BYTES) throw new MalformedBodyError(`syncLeaves has ${keys.length} keys but ${versions.byteLength} bytes of versions`)
  return {
    partition: partitionField(object, 'syncLeaves'),
    buckets: expectArray(field(object, 'buckets'), 'syncLeaves.buckets', MAX_BUCKETS_PER_REQUEST, uint(levelWidth(DEPTH) - 1)),
    keys,
    versions,
    ...repairFlag(object, 'syncLeaves'),
  }
}

export function validateSyncLeavesReply(body: unknown): SyncLeavesReplyBody {
  const object = expectObject(body, 'syncLeavesReply')
  const indices = (name: string): number[] => expectArray(field(object, name), `syncLeavesReply.${name}`, MAX_KEYS_PER_LEAVES, uint(MAX_KEYS_PER_LEAVES - 1))
  return {
    records: expectArray(field(object, 'records'), 'syncLeavesReply.records', MAX_KEYS_PER_LEAVES, validateSyncRecord),
    older: indices('older'),
    missing: indices('missing'),
    superseded: indices('superseded'),
    done: expectUint(field(object, 'done'), 'syncLeavesReply.done', MAX_BUCKETS_PER_REQUEST),
    ...heldBackField(object),
  }
}

function heldBackField(object: Readonly<Record<string, unknown>>): { heldBack?: Uint8Array } {
  const heldBack = optional(object.heldBack, 'syncLeavesReply.heldBack', (value, what) => expectBytes(value, what, DIGEST_BYTES, DIGEST_BYTES))
  return heldBack === undefined ? {} : { heldBack }
}

export function validateSyncPush(body: unknown): SyncPushBody {
  const object = expectObject(body, 'syncPush')
  return { entries: expectArray(field(object, 'entries'), 'syncPush.entries', MAX_RECORDS_PER_BATCH, validateSyncRecord) }
}

export function validateSyncPushReply(body: unknown): SyncPushReplyBody {
  const object = expectObject(body, 'syncPushReply')
  return { applied: expectArray(field(object, 'applied'), 'syncPushReply.applied', MAX_RECORDS_PER_BATCH, expectBoolean) }
}
