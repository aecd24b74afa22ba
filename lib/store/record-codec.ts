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

/** MessagePack tags of encodeRecord's fields: fixarray of 5 or 6, fixstr of a node id's 16 characters. */
const FIXARRAY_5 = 0x95
const FIXARRAY_6 = 0x96
const FIXSTR_16 = 0xb0
const NODE_ID_CHARS = 16
/** The other MessagePack tags encodeRecord writes. */
const NIL = 0xc0
const TRUE = 0xc3
const BIN_8 = 0xc4
const BIN_16 = 0xc5
const BIN_32 = 0xc6
const UINT_8 = 0xcc
const UINT_16 = 0xcd
const UINT_32 = 0xce
const FLOAT_64 = 0xcb
/** Bytes of a non-negative safe integer as msgpackr writes it (see writeUint). */
function uintBytes(value: number): number {
  return value < 0x80 ? 1 : value < 0x100 ? 2 : value < 0x10000 ? 3 : value <= 0xffffffff ? 5 : 9
}

/**
 * A non-negative safe integer in the form msgpackr gives it: a positive fixint or the smallest
 * uint up to 32 bits, and a float64 above (exact below 2^53). Returns the next offset.
 */
function writeUint(into: Buffer, value: number, offset: number): number {
  if (value < 0x80) {
    into[offset] = value
    return offset + 1
  }
  if (value < 0x100) {
    into[offset] = UINT_8
    into[offset + 1] = value
    return offset + 2
  }
  if (value < 0x10000) {
    into[offset] = UINT_16
    into.writeUInt16BE(value, offset + 1)
    return offset + 3
  }
  if (value <= 0xffffffff) {
    into[offset] = UINT_32
    into.writeUInt32BE(value, offset + 1)
    return offset + 5
  }
  into[offset] = FLOAT_64
  into.writeDoubleBE(value, offset + 1)
  return offset + 9
}

/**
 * Throws TypeError for a record no caller should ever build (replication validates first).
 * Writes the bytes msgpackr would (record-codec.test.ts holds it to that) without its generic
 * walk: every apply on every replica encodes its record once.
 */
export function encodeRecord(record: StoredRecord): Buffer {
  const { value, version, expiresAtMs } = record
  if (!Number.isSafeInteger(version.hlc) || version.hlc < 0) throw new TypeError(`record version hlc is not a tick count: ${version.hlc}`)
  if (!isNodeId(version.node)) throw new TypeError(`record version node is not a node id: ${JSON.stringify(version.node)}`)
  if (value !== null && !(value instanceof Uint8Array)) throw new TypeError('record value must be bytes or null')
  if (expiresAtMs !== undefined && (!Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0)) {
    throw new TypeError(`record expiresAtMs is not a ms timestamp: ${expiresAtMs}`)
  }
  const strong = record.strong === true
  const valueHeader = value === null ? 1 : value.length < 0x100 ? 2 : value.length < 0x10000 ? 3 : 5
  const size = 2 + uintBytes(version.hlc) + 1 + NODE_ID_CHARS + valueHeader + (value?.length ?? 0)
    + (expiresAtMs === undefined ? 1 : uintBytes(expiresAtMs)) + (strong ? 1 : 0)
  const bytes = Buffer.allocUnsafe(size)
  bytes[0] = strong ? FIXARRAY_6 : FIXARRAY_5
  bytes[1] = RECORD_FORMAT
  let offset = writeUint(bytes, version.hlc, 2)
  bytes[offset] = FIXSTR_16
  // A node id is 16 lowercase hex characters (checked above): one byte each.
  offset += 1 + bytes.write(version.node, offset + 1, NODE_ID_CHARS, 'latin1')
  if (value === null) {
    bytes[offset++] = NIL
  } else {
    if (value.length < 0x100) {
      bytes[offset] = BIN_8
      bytes[offset + 1] = value.length
    } else if (value.length < 0x10000) {
      bytes[offset] = BIN_16
      bytes.writeUInt16BE(value.length, offset + 1)
    } else {
      bytes[offset] = BIN_32
      bytes.writeUInt32BE(value.length, offset + 1)
    }
    offset += valueHeader
    bytes.set(value, offset)
    offset += value.length
  }
  if (expiresAtMs === undefined) bytes[offset++] = NIL
  else offset = writeUint(bytes, expiresAtMs, offset)
  if (strong) bytes[offset++] = TRUE
  if (offset !== size) throw new Error(`encodeRecord wrote ${offset} bytes of the ${size} it sized`)
  return bytes
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

/**
 * True when stored record bytes are a strong record (a six-element array), read from the first
 * byte without decoding; bytes in any other layout are decoded, which says what is wrong.
 */
export function isStrongRecord(bytes: Uint8Array, key: string): boolean {
  if (bytes[0] === FIXARRAY_5) return false
  if (bytes[0] === FIXARRAY_6) return true
  return decodeRecord(bytes, key).strong === true
}

/** Bytes of a version in the form the Merkle hashes take: hlc uint64 big-endian ‖ node id. */
const VERSION_BYTES = 16
/** Lowercase hex digit → its value; -1 for every other byte. */
const HEX_VALUE = new Int8Array(256).fill(-1)
for (const [index, digit] of [...'0123456789abcdef'].entries()) HEX_VALUE[digit.charCodeAt(0)] = index
/** Where a big-endian float64 hlc is reassembled (no DataView per record). */
const FLOAT64_BYTES = new DataView(new ArrayBuffer(8))

/**
 * Writes a stored record's version into `into` (16 bytes: hlc uint64 BE ‖ node id) straight from
 * its MessagePack, without decoding the rest (the value is most of the bytes): the Merkle rebuild
 * at start reads every record's version and nothing else. Returns false for bytes not in the
 * layout encodeRecord writes; the caller then decodes the record in full, which says what is wrong.
 */
export function writeRecordVersion(bytes: Uint8Array, into: Uint8Array): boolean {
  if (into.length < VERSION_BYTES || bytes.length < 3) return false
  if ((bytes[0] !== FIXARRAY_5 && bytes[0] !== FIXARRAY_6) || bytes[1] !== RECORD_FORMAT) return false
  // msgpackr writes the hlc in the smallest form that holds it: a float64 for today's tick counts.
  const tag = bytes[2] as number
  const width = tag < 0x80 ? 0 : tag === 0xcc ? 1 : tag === 0xcd ? 2 : tag === 0xce ? 4 : tag === 0xcf || tag === 0xcb ? 8 : -1
  const offset = 3 + width
  if (width < 0 || bytes.length < offset + 1 + NODE_ID_CHARS) return false
  let hlc: number
  if (width === 0) hlc = tag
  else if (tag === 0xcb) {
    for (let i = 0; i < 8; i++) FLOAT64_BYTES.setUint8(i, bytes[3 + i] as number)
    hlc = FLOAT64_BYTES.getFloat64(0)
  } else {
    hlc = 0
    for (let i = 0; i < width; i++) hlc = hlc * 256 + (bytes[3 + i] as number)
  }
  if (!Number.isSafeInteger(hlc) || bytes[offset] !== FIXSTR_16) return false
  // hlc < 2^53, so the split into two uint32 halves is exact.
  const high = Math.floor(hlc / 2 ** 32)
  const low = hlc >>> 0
  into[0] = high >>> 24; into[1] = (high >>> 16) & 0xff; into[2] = (high >>> 8) & 0xff; into[3] = high & 0xff
  into[4] = low >>> 24; into[5] = (low >>> 16) & 0xff; into[6] = (low >>> 8) & 0xff; into[7] = low & 0xff
  for (let i = 0; i < 8; i++) {
    const upper = HEX_VALUE[bytes[offset + 1 + 2 * i] as number] as number
    const lower = HEX_VALUE[bytes[offset + 2 + 2 * i] as number] as number
    if (upper < 0 || lower < 0) return false
    into[8 + i] = (upper << 4) | lower
  }
  return true
}
