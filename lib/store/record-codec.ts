import { Packr } from 'msgpackr'
import { isNodeId } from '../clock/version.js'
import type { StoredRecord } from './record.js'

/**
 * On-disk form of a record: the MessagePack array
 * `[RECORD_FORMAT, hlc, node, value (bin) | nil, expiresAtMs | nil]`, with a sixth element
 * `true` for a strong record (committed through CASPaxos; see record.ts).
 * Plain MessagePack (no msgpackr record extension), so any MessagePack reader can inspect a
 * data dir, and the leading format number lets a later version change the layout.
 */
const RECORD_FORMAT = 1

const packr = new Packr({ useRecords: false })

/** A stored record that does not decode: a bug or a damaged data dir, never a user error. */
export class CorruptRecordError extends Error {
  constructor(readonly key: string, reason: string) {
    super(`stored record for key ${JSON.stringify(key)} is corrupt: ${reason}`)
    this.name = 'CorruptRecordError'
  }
}

/** Throws TypeError for a record no caller should ever build (replication validates first). */
export function encodeRecord(record: StoredRecord): Buffer {
  const { value, version, expiresAtMs } = record
  if (!Number.isSafeInteger(version.hlc) || version.hlc < 0) throw new TypeError(`record version hlc is not a tick count: ${version.hlc}`)
  if (!isNodeId(version.node)) throw new TypeError(`record version node is not a node id: ${JSON.stringify(version.node)}`)
  if (value !== null && !(value instanceof Uint8Array)) throw new TypeError('record value must be bytes or null')
  if (expiresAtMs !== undefined && (!Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0)) {
    throw new TypeError(`record expiresAtMs is not a ms timestamp: ${expiresAtMs}`)
  }
  const fields: unknown[] = [RECORD_FORMAT, version.hlc, version.node, value, expiresAtMs ?? null]
  if (record.strong === true) fields.push(true)
  return packr.pack(fields)
}

export function decodeRecord(bytes: Uint8Array, key: string): StoredRecord {
  let decoded: unknown
  try {
    decoded = packr.unpack(bytes)
  } catch (error) {
    throw new CorruptRecordError(key, `not MessagePack (${(error as Error).message})`)
  }
  if (!Array.isArray(decoded) || (decoded.length !== 5 && decoded.length !== 6)) throw new CorruptRecordError(key, 'not a 5- or 6-element array')
  const [format, hlc, node, value, expiresAtMs, strong] = decoded as unknown[]
  if (decoded.length === 6 && strong !== true) throw new CorruptRecordError(key, 'bad strong flag')
  if (format !== RECORD_FORMAT) throw new CorruptRecordError(key, `unknown record format ${String(format)}`)
  if (typeof hlc !== 'number' || !Number.isSafeInteger(hlc) || hlc < 0) throw new CorruptRecordError(key, 'bad hlc')
  if (!isNodeId(node)) throw new CorruptRecordError(key, 'bad node id')
  if (value !== null && !(value instanceof Uint8Array)) throw new CorruptRecordError(key, 'value is neither bytes nor nil')
  if (expiresAtMs !== null && (typeof expiresAtMs !== 'number' || !Number.isSafeInteger(expiresAtMs))) {
    throw new CorruptRecordError(key, 'bad expiresAtMs')
  }
  // Optional fields set only when present, without a conditional spread's temporary objects:
  // every read and every apply decodes a record.
  const record: { value: Uint8Array | null; version: { hlc: number; node: typeof node }; expiresAtMs?: number; strong?: true } = { value, version: { hlc, node } }
  if (expiresAtMs !== null) record.expiresAtMs = expiresAtMs as number
  if (strong === true) record.strong = true
  return record
}
