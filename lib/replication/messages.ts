import { isNodeId, type NodeId } from '../clock/version.js'
import { expectArray, expectBoolean, expectBytes, expectObject, expectString, expectUint, field, MalformedBodyError, optional } from '../codec/validate.js'
import type { StoredRecord } from '../store/record.js'
import { NODE_ID_BYTES, nodeIdAt, nodeIdBytes } from '../codec/node-id-bytes.js'

/**
 * Replica protocol: a coordinator asks the replicas of a key to apply or read records. Bodies
 * carry records in the store's own shape so replicas apply them with the same apply-if-newer
 * primitive as local writes, and every replica that saw the same writes holds the same bytes.
 */

/** Keys on the wire obey the client API's largest possible key (LMDB's limit, see config). */
export const MAX_WIRE_KEY_CHARS = 2048
/** Values on the wire: the largest value a node may be configured to accept. */
export const MAX_WIRE_VALUE_BYTES = 64 * 1024 * 1024
/** Records in one replicaWrite (batches and hint handoff). */
export const MAX_RECORDS_PER_WRITE = 1024

/** A record as it crosses the wire: `value` null is a tombstone. */
export interface WireEntry {
  readonly key: string
  readonly value: Uint8Array | null
  readonly hlc: number
  readonly node: NodeId
  readonly expiresAtMs?: number
  /** A value committed through CASPaxos (StoredRecord.strong). */
  readonly strong?: true
}

export interface ReplicaWriteBody { readonly entries: readonly WireEntry[] }
/**
 * One flag per entry: true when the replica stored it (false: it already held a newer record).
 * `strong`: indices of plain entries not stored because the replica holds a strong record of the
 * key (a key changed through CASPaxos refuses plain writes; absent = none).
 */
export interface ReplicaWriteReplyBody { readonly applied: readonly boolean[]; readonly strong?: readonly number[] }
export interface ReplicaReadBody { readonly key: string }
/** The replica's raw record (tombstones and expired records included), or null when it has none. */
export interface ReplicaReadReplyBody { readonly entry: WireEntry | null }

// Optional fields are set only when present (an absent field stays absent, as the store's
// records expect), without the temporary objects of conditional spreads: every write crosses
// both functions.
type Mutable<T> = { -readonly [K in keyof T]: T[K] }

export function toWire(key: string, record: StoredRecord): WireEntry {
  const entry: Mutable<WireEntry> = { key, value: record.value, hlc: record.version.hlc, node: record.version.node }
  if (record.expiresAtMs !== undefined) entry.expiresAtMs = record.expiresAtMs
  if (record.strong === true) entry.strong = true
  return entry
}

export function fromWire(entry: WireEntry): StoredRecord {
  const record: Mutable<StoredRecord> = { value: entry.value, version: { hlc: entry.hlc, node: entry.node } }
  if (entry.expiresAtMs !== undefined) record.expiresAtMs = entry.expiresAtMs
  if (entry.strong === true) record.strong = true
  return record
}

/** A record from a peer, checked field by field (shared with the anti-entropy frames). */
export function validateWireEntry(value: unknown, what: string): WireEntry {
  const body = expectObject(value, what)
  const key = expectString(field(body, 'key'), `${what}.key`, MAX_WIRE_KEY_CHARS, 1)
  const rawValue = field(body, 'value')
  const bytes = rawValue === null ? null : expectBytes(rawValue, `${what}.value`, MAX_WIRE_VALUE_BYTES)
  const hlc = expectUint(field(body, 'hlc'), `${what}.hlc`)
  const node = field(body, 'node')
  if (!isNodeId(node)) throw new MalformedBodyError(`${what}.node must be a node id (16 lowercase hex characters)`)
  const expiresAtMs = optional(field(body, 'expiresAtMs'), `${what}.expiresAtMs`, (v, w) => expectUint(v, w))
  const strong = optional(field(body, 'strong'), `${what}.strong`, expectBoolean)
  return { key, value: bytes, hlc, node, ...(expiresAtMs !== undefined ? { expiresAtMs } : {}), ...(strong === true ? { strong: true as const } : {}) }
}

/**
 * The hot path's frames travel compact (issue 15), as the sync frames do: `replicaWrite` is the
 * array of its entries, each `[key, value | nil, hlc, node id (8 bytes), expiresAtMs | nil, true]`
 * with the trailing fields left off when absent (no expiry, not strong), and `replicaWriteReply`
 * is `[applied, strong?]`, `applied` packed one bit per entry (entry i is bit i % 8 of byte
 * i / 8). A map per record with field names and a hex node id cost ~45 bytes more per record and
 * an object walk to validate it.
 */
/** The wire form of a replicaWrite body (see above). */
export function encodeReplicaWrite(body: ReplicaWriteBody): unknown[] {
  return body.entries.map(compactEntry)
}

/** One entry's compact form (also the `entry` of the compact paxos frames). */
export function compactEntry(entry: WireEntry): unknown[] {
  const fields: unknown[] = [entry.key, entry.value, entry.hlc, nodeIdBytes(entry.node)]
  if (entry.strong === true) fields.push(entry.expiresAtMs ?? null, true)
  else if (entry.expiresAtMs !== undefined) fields.push(entry.expiresAtMs)
  return fields
}

export function validateCompactEntry(value: unknown, what: string): WireEntry {
  if (!Array.isArray(value) || value.length < 4 || value.length > 6) throw new MalformedBodyError(`${what} is not [key, value, hlc, node, expiresAtMs?, strong?]`)
  const key = expectString(value[0], `${what}.key`, MAX_WIRE_KEY_CHARS, 1)
  const bytes = value[1] === null ? null : expectBytes(value[1], `${what}.value`, MAX_WIRE_VALUE_BYTES)
  const hlc = expectUint(value[2], `${what}.hlc`)
  const nodeBytes = expectBytes(value[3], `${what}.node`, NODE_ID_BYTES, NODE_ID_BYTES)
  const node = nodeIdAt(nodeBytes, 0)
  const entry: Mutable<WireEntry> = { key, value: bytes, hlc, node }
  if (value.length > 4 && value[4] !== null) entry.expiresAtMs = expectUint(value[4], `${what}.expiresAtMs`)
  if (value.length === 6) {
    if (value[5] !== true) throw new MalformedBodyError(`${what}.strong must be true when present`)
    entry.strong = true
  }
  return entry
}

export function validateReplicaWrite(body: unknown): ReplicaWriteBody {
  return { entries: expectArray(body, 'replicaWrite', MAX_RECORDS_PER_WRITE, validateCompactEntry) }
}

/** The wire form of a replicaWriteReply body (see above). */
export function encodeReplicaWriteReply(body: ReplicaWriteReplyBody): unknown[] {
  const bits = Buffer.alloc(Math.ceil(body.applied.length / 8))
  body.applied.forEach((applied, i) => { if (applied) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7)) })
  return body.strong === undefined ? [body.applied.length, bits] : [body.applied.length, bits, body.strong]
}

export function validateReplicaWriteReply(body: unknown): ReplicaWriteReplyBody {
  if (!Array.isArray(body) || body.length < 2 || body.length > 3) throw new MalformedBodyError('replicaWriteReply is not [count, applied bits, strong?]')
  const count = expectUint(body[0], 'replicaWriteReply.count', MAX_RECORDS_PER_WRITE)
  const bits = expectBytes(body[1], 'replicaWriteReply.applied', Math.ceil(count / 8), Math.ceil(count / 8))
  const applied = Array.from({ length: count }, (_, i) => ((bits[i >> 3] as number) & (1 << (i & 7))) !== 0)
  const strong = body.length === 3 ? expectArray(body[2], 'replicaWriteReply.strong', MAX_RECORDS_PER_WRITE, (i, iw) => expectUint(i, iw, MAX_RECORDS_PER_WRITE - 1)) : undefined
  return { applied, ...(strong !== undefined ? { strong } : {}) }
}

export function validateReplicaRead(body: unknown): ReplicaReadBody {
  const object = expectObject(body, 'replicaRead')
  return { key: expectString(field(object, 'key'), 'replicaRead.key', MAX_WIRE_KEY_CHARS, 1) }
}

export function validateReplicaReadReply(body: unknown): ReplicaReadReplyBody {
  const object = expectObject(body, 'replicaReadReply')
  const entry = field(object, 'entry')
  return { entry: entry === null ? null : validateWireEntry(entry, 'replicaReadReply.entry') }
}

/** Most records one replicaScan page carries. */
export const MAX_SCAN_PAGE = 1000

/**
 * Most bytes of keys and values one replicaScan reply carries by default: well inside the 4 MiB
 * peer frame bound, which a page of large values would otherwise overflow.
 */
export const MAX_SCAN_REPLY_BYTES = 3 * 1024 * 1024
/** Bytes a record costs in a scan page besides its key and value (version, expiry, framing). */
export const SCAN_RECORD_OVERHEAD_BYTES = 48

/**
 * A page of a replica's raw records (tombstones included) with keys after `after`: at most
 * `limit` records and, past the first, `maxBytes` of keys and values (absent: MAX_SCAN_REPLY_BYTES;
 * replicas before issue 17 ignore it).
 */
export interface ReplicaScanBody { readonly prefix: string; readonly after?: string; readonly start?: string; readonly end?: string; readonly limit: number; readonly maxBytes?: number }
/** `more`: the replica has records beyond this page. */
export interface ReplicaScanReplyBody { readonly entries: readonly WireEntry[]; readonly more: boolean }

export function validateReplicaScan(body: unknown): ReplicaScanBody {
  const object = expectObject(body, 'replicaScan')
  const prefix = expectString(field(object, 'prefix'), 'replicaScan.prefix', MAX_WIRE_KEY_CHARS)
  const after = optional(field(object, 'after'), 'replicaScan.after', (v, w) => expectString(v, w, MAX_WIRE_KEY_CHARS))
  const limit = expectUint(field(object, 'limit'), 'replicaScan.limit', MAX_SCAN_PAGE)
  if (limit < 1) throw new MalformedBodyError('replicaScan.limit must be at least 1')
  const maxBytes = optional(field(object, 'maxBytes'), 'replicaScan.maxBytes', (v, w) => expectUint(v, w, MAX_SCAN_REPLY_BYTES))
  const start = optional(field(object, 'start'), 'replicaScan.start', (v, w) => expectString(v, w, MAX_WIRE_KEY_CHARS))
  const end = optional(field(object, 'end'), 'replicaScan.end', (v, w) => expectString(v, w, MAX_WIRE_KEY_CHARS))
  return {
    prefix, ...(after !== undefined ? { after } : {}), ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}),
    limit, ...(maxBytes !== undefined ? { maxBytes } : {}),
  }
}

/**
 * The first records of `records` (in key order) as a scan page: at most `limit`, and no more
 * keys and values than `maxBytes` (at least one record, so any record can be paged through).
 * `more`: records follow this page. Reads no further than one record past the page.
 */
export function scanPageOf(records: Iterable<{ readonly key: string; readonly record: StoredRecord }>, limit: number, maxBytes: number): { entries: WireEntry[]; more: boolean } {
  const entries: WireEntry[] = []
  let bytes = 0
  for (const { key, record } of records) {
    if (entries.length >= limit) return { entries, more: true }
    const recordBytes = Buffer.byteLength(key) + (record.value?.byteLength ?? 0) + SCAN_RECORD_OVERHEAD_BYTES
    if (entries.length > 0 && bytes + recordBytes > maxBytes) return { entries, more: true }
    bytes += recordBytes
    entries.push(toWire(key, record))
  }
  return { entries, more: false }
}

export function validateReplicaScanReply(body: unknown): ReplicaScanReplyBody {
  const object = expectObject(body, 'replicaScanReply')
  const more = field(object, 'more')
  if (typeof more !== 'boolean') throw new MalformedBodyError('replicaScanReply.more must be a boolean')
  return { entries: expectArray(field(object, 'entries'), 'replicaScanReply.entries', MAX_SCAN_PAGE, validateWireEntry), more }
}
