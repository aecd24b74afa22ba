import { MalformedBodyError, expectUint } from '../../codec/validate.js'
import { BadRequestError, PayloadTooLargeError } from '../../errors.js'
import { parseConsistencyLevel, type ConsistencyLevel } from '../../replication/consistency.js'
import type { Version } from '../../clock/version.js'
import type { BatchOperation, ReadOptions, WriteOptions } from '../../replication/service.js'
import { MAX_TTL_SECONDS, type ApiLimits } from '../limits.js'
import { checkKey, parseIfVersion, parseIncrement, parseTtlSeconds } from '../params.js'
import { LINEARIZABLE_LEVEL, MAX_REQUEST_ID, OP_BATCH, OP_CAS, OP_DELETE, OP_GET, OP_INCR, OP_PUT } from './protocol.js'

/**
 * Request frames as the server reads them: `[requestId, op, ...args]`, every field checked
 * with the HTTP API's rules and error answers (400, 413), so a request means the same on both.
 *
 *   [id, 1, key, r?]               get
 *   [id, 2, key, value, w?, ttl?]  put (value: bin; ttl: whole seconds)
 *   [id, 3, key, w?]               delete
 *   [id, 4, ops, w?]               batch; ops: [2, key, value, ttl?] | [3, key]
 *   [id, 5, key, value|nil, ifVersion]  compare-and-set (nil deletes; ifVersion: version string or "absent")
 *   [id, 6, key, by?]              incr (by: a safe integer, default 1)
 *
 * A get whose level is "linearizable" is a linearizable read.
 * A level (r, w) is "one", "quorum", "all" or an integer; nil stands for an absent argument.
 */

export type StreamRequest =
  | { readonly op: typeof OP_GET; readonly key: string; readonly options: ReadOptions; readonly linearizable?: true }
  | { readonly op: typeof OP_CAS; readonly key: string; readonly value: Uint8Array | null; readonly ifVersion: Version | 'absent' }
  | { readonly op: typeof OP_INCR; readonly key: string; readonly by: bigint }
  | { readonly op: typeof OP_PUT; readonly key: string; readonly value: Uint8Array; readonly options: WriteOptions }
  | { readonly op: typeof OP_DELETE; readonly key: string; readonly options: WriteOptions }
  | { readonly op: typeof OP_BATCH; readonly operations: BatchOperation[]; readonly options: WriteOptions }

/** A frame that cannot even be answered (no usable requestId): the connection closes. */
export class ProtocolViolationError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProtocolViolationError'
  }
}

/** Most entries any request frame has (a put); longer frames are refused before reading them. */
const MAX_FRAME_ENTRIES = 6

/** The requestId of a frame, or ProtocolViolationError when there is none to answer to. */
export function frameRequestId(frame: unknown): number {
  if (!Array.isArray(frame) || frame.length < 2) throw new ProtocolViolationError('a frame that is not an array [requestId, op, ...args]')
  try {
    const id = expectUint(frame[0], 'requestId', MAX_REQUEST_ID)
    if (id === 0) throw new MalformedBodyError('requestId is 0')
    return id
  } catch (error) {
    throw new ProtocolViolationError(`a frame whose ${(error as Error).message}; requestIds are integers from 1 to ${MAX_REQUEST_ID}`)
  }
}

/** The typed request of a frame whose requestId was read; throws BadRequestError or PayloadTooLargeError. */
export function parseRequest(frame: readonly unknown[], limits: ApiLimits): StreamRequest {
  const op = frame[1]
  if (frame.length > MAX_FRAME_ENTRIES) throw new BadRequestError(`a request frame has at most ${MAX_FRAME_ENTRIES} entries, this one has ${frame.length}`)
  switch (op) {
    case OP_GET: {
      arity(frame, 3, 4, 'a get is [id, 1, key, r?]')
      const key = readKey(frame[2], 'key', limits)
      if (frame[3] === LINEARIZABLE_LEVEL) return { op, key, options: {}, linearizable: true }
      const r = readLevel(frame[3], 'r')
      return { op, key, options: r === undefined ? {} : { r } }
    }
    case OP_PUT: {
      arity(frame, 4, 6, 'a put is [id, 2, key, value, w?, ttl?]')
      const key = readKey(frame[2], 'key', limits)
      const value = readValue(frame[3], 'value', limits.maxValueBytes, {}, { maxBytes: limits.maxValueBytes })
      const w = readLevel(frame[4], 'w')
      const ttlSeconds = readPutTtl(frame[5])
      return { op, key, value, options: writeOptions(w, ttlSeconds) }
    }
    case OP_DELETE: {
      arity(frame, 3, 4, 'a delete is [id, 3, key, w?]')
      const key = readKey(frame[2], 'key', limits)
      return { op, key, options: writeOptions(readLevel(frame[3], 'w'), undefined) }
    }
    case OP_BATCH: {
      arity(frame, 3, 4, 'a batch is [id, 4, ops, w?]')
      const operations = readBatchOps(frame[2], limits)
      return { op, operations, options: writeOptions(readLevel(frame[3], 'w'), undefined) }
    }
    case OP_CAS: {
      arity(frame, 5, 5, 'a compare-and-set is [id, 5, key, value | nil, ifVersion]')
      const key = readKey(frame[2], 'key', limits)
      const value = frame[3] === null ? null : readValue(frame[3], 'value', limits.maxValueBytes, {}, { maxBytes: limits.maxValueBytes })
      if (typeof frame[4] !== 'string') throw new BadRequestError('ifVersion must be a version string or "absent"', { param: 'ifVersion' })
      return { op, key, value, ifVersion: parseIfVersion(frame[4]) }
    }
    case OP_INCR: {
      arity(frame, 3, 4, 'an incr is [id, 6, key, by?]')
      const key = readKey(frame[2], 'key', limits)
      const by = frame[3] ?? undefined
      if (by !== undefined && (typeof by !== 'number' || !Number.isSafeInteger(by))) throw new BadRequestError('by must be a safe integer', { param: 'by' })
      return { op, key, by: parseIncrement(by === undefined ? undefined : String(by)) }
    }
    default:
      throw new BadRequestError(`unknown op ${typeof op === 'number' ? op : `of type ${typeof op}`}; expected 1 (get), 2 (put), 3 (delete), 4 (batch), 5 (compare-and-set), 6 (incr), 7 (watch) or 9 (unwatch)`)
  }
}

function arity(frame: readonly unknown[], min: number, max: number, layout: string): void {
  if (frame.length < min || frame.length > max) throw new BadRequestError(`a frame of ${frame.length} entries: ${layout}`)
}

function writeOptions(w: ConsistencyLevel | undefined, ttlSeconds: number | undefined): WriteOptions {
  if (w === undefined) return ttlSeconds === undefined ? {} : { ttlSeconds }
  return ttlSeconds === undefined ? { w } : { w, ttlSeconds }
}

function readKey(key: unknown, what: string, limits: ApiLimits, details: Record<string, unknown> = {}): string {
  if (typeof key !== 'string') throw new BadRequestError(`${what} must be a string`, details)
  checkKey(key, limits.maxKeyBytes, 'body', what, details)
  return key
}

/** `tooLargeDetails`: what the HTTP API adds to the same 413 (a PUT body and a batch op differ). */
function readValue(value: unknown, what: string, maxValueBytes: number, details: Record<string, unknown>, tooLargeDetails: Record<string, unknown>): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new BadRequestError(`${what} must be a byte string (MessagePack bin)`, details)
  if (value.byteLength > maxValueBytes) throw new PayloadTooLargeError(`${what} is larger than the limit of ${maxValueBytes} bytes`, tooLargeDetails)
  return value
}

/** nil or absent = the node's default; otherwise the query parameter's rule. */
function readLevel(level: unknown, what: 'w' | 'r'): ConsistencyLevel | undefined {
  if (level === undefined || level === null) return undefined
  if (typeof level === 'string') return parseConsistencyLevel(level, what)
  if (typeof level === 'number' && Number.isInteger(level)) return parseConsistencyLevel(String(level), what)
  throw new BadRequestError(`${what} must be one, quorum, all or a number`, { param: what })
}

/** A put's ttl follows the `?ttl=` rule, message included. */
function readPutTtl(ttl: unknown): number | undefined {
  if (ttl === undefined || ttl === null) return undefined
  if (typeof ttl === 'number') return parseTtlSeconds(String(ttl))
  throw new BadRequestError(`ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}`, { param: 'ttl' })
}

/** A batch operation's ttl follows the POST /batch rule. */
function readTtl(ttl: unknown, what: string, details: Record<string, unknown>): number | undefined {
  if (ttl === undefined || ttl === null) return undefined
  if (typeof ttl === 'number' && Number.isInteger(ttl) && ttl >= 1 && ttl <= MAX_TTL_SECONDS) return ttl
  throw new BadRequestError(`${what} must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}`, { ...details, param: 'ttl' })
}

/** All-or-nothing, like POST /batch: every operation is checked before any is applied. */
function readBatchOps(ops: unknown, limits: ApiLimits): BatchOperation[] {
  if (!Array.isArray(ops)) throw new BadRequestError('batch ops must be an array')
  if (ops.length === 0) throw new BadRequestError('batch ops must contain at least one operation')
  if (ops.length > limits.maxBatchOps) {
    throw new PayloadTooLargeError(`batch has ${ops.length} operations, more than the limit of ${limits.maxBatchOps}; split it`, { maxBatchOps: limits.maxBatchOps })
  }
  const seenKeys = new Set<string>()
  return ops.map((op: unknown, index): BatchOperation => {
    const where = `ops[${index}]`
    const details = { index }
    if (!Array.isArray(op) || (op[0] !== OP_PUT && op[0] !== OP_DELETE)) {
      throw new BadRequestError(`${where} must be [2, key, value, ttl?] (put) or [3, key] (delete)`, details)
    }
    const isPut = op[0] === OP_PUT
    if (isPut ? op.length < 3 || op.length > 4 : op.length !== 2) {
      throw new BadRequestError(`${where} has ${op.length} entries; a put is [2, key, value, ttl?] and a delete [3, key]`, details)
    }
    const key = readKey(op[1], `${where}.key`, limits, details)
    // Two writes to one key in one batch have no meaningful order for the client; refuse the ambiguity.
    if (seenKeys.has(key)) throw new BadRequestError(`${where} repeats key ${JSON.stringify(key)}; send one operation per key`, details)
    seenKeys.add(key)
    if (!isPut) return { op: 'delete', key }
    const value = readValue(op[2], `${where}.value`, limits.maxValueBytes, details, { index, maxValueBytes: limits.maxValueBytes })
    const ttlSeconds = readTtl(op[3], `${where}.ttl`, details)
    return ttlSeconds === undefined ? { op: 'put', key, value } : { op: 'put', key, value, ttlSeconds }
  })
}
