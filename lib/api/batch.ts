import { BadRequestError, PayloadTooLargeError } from '../errors.js'
import { parseConsistencyLevel, type ConsistencyLevel } from '../replication/consistency.js'
import type { BatchOperation } from '../replication/service.js'
import type { ApiLimits } from './limits.js'
import { MAX_TTL_SECONDS } from './limits.js'
import { checkKey } from './params.js'

/**
 * POST /batch body: `{"ops":[{"op":"put","key":"k","value":"<base64>","ttl":N} |
 * {"op":"delete","key":"k"}], "w":"quorum"}`. Validation is all-or-nothing: every operation is
 * checked before any is applied, so a bad op never leaves half a batch written.
 *
 * Too many operations answers 413 (the request is too large, like an oversized body); every
 * other mistake answers 400 naming the operation by index.
 */

export interface ParsedBatch {
  readonly operations: BatchOperation[]
  /** Write level from the body, if it gave one. */
  readonly w?: ConsistencyLevel
}

/** Strict standard base64 with padding: a lenient decoder would turn typos into wrong bytes. */
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const TOP_LEVEL_FIELDS = new Set(['ops', 'w'])
const PUT_FIELDS = new Set(['op', 'key', 'value', 'ttl'])
const DELETE_FIELDS = new Set(['op', 'key'])

export function parseBatch(body: Buffer, limits: ApiLimits): ParsedBatch {
  let document: unknown
  try {
    document = JSON.parse(body.toString('utf8'))
  } catch {
    throw new BadRequestError('batch body is not valid JSON; send {"ops":[...]}')
  }
  if (!isPlainObject(document)) throw new BadRequestError('batch body must be a JSON object {"ops":[...]}')
  for (const field of Object.keys(document)) {
    if (!TOP_LEVEL_FIELDS.has(field)) throw new BadRequestError(`batch body has unknown field ${JSON.stringify(field)}; expected ops and optionally w`)
  }
  const ops = document.ops
  if (!Array.isArray(ops)) throw new BadRequestError('batch body must have an "ops" array')
  if (ops.length === 0) throw new BadRequestError('batch "ops" must contain at least one operation')
  if (ops.length > limits.maxBatchOps) {
    throw new PayloadTooLargeError(`batch has ${ops.length} operations, more than the limit of ${limits.maxBatchOps}; split it`, { maxBatchOps: limits.maxBatchOps })
  }

  const seenKeys = new Set<string>()
  const operations = ops.map((op: unknown, index) => {
    const operation = parseOperation(op, index, limits)
    // Two writes to one key in one batch have no meaningful order for the client; refuse the ambiguity.
    if (seenKeys.has(operation.key)) throw new BadRequestError(`ops[${index}] repeats key ${JSON.stringify(operation.key)}; send one operation per key`, { index })
    seenKeys.add(operation.key)
    return operation
  })
  const w = document.w === undefined ? undefined : parseBodyLevel(document.w)
  return w === undefined ? { operations } : { operations, w }
}

function parseOperation(op: unknown, index: number, limits: ApiLimits): BatchOperation {
  const where = `ops[${index}]`
  if (!isPlainObject(op)) throw new BadRequestError(`${where} must be an object`, { index })
  if (op.op !== 'put' && op.op !== 'delete') throw new BadRequestError(`${where}.op must be "put" or "delete"`, { index })
  const allowed = op.op === 'put' ? PUT_FIELDS : DELETE_FIELDS
  for (const field of Object.keys(op)) {
    if (!allowed.has(field)) throw new BadRequestError(`${where} has unknown field ${JSON.stringify(field)} for a ${op.op}`, { index })
  }
  if (typeof op.key !== 'string') throw new BadRequestError(`${where}.key must be a string`, { index })
  checkKey(op.key, limits.maxKeyBytes, 'body', `${where}.key`, { index })
  if (op.op === 'delete') return { op: 'delete', key: op.key }

  const value = decodeValue(op.value, where, index, limits.maxValueBytes)
  if (op.ttl === undefined) return { op: 'put', key: op.key, value }
  return { op: 'put', key: op.key, value, ttlSeconds: checkTtl(op.ttl, where, index) }
}

function decodeValue(encoded: unknown, where: string, index: number, maxValueBytes: number): Uint8Array {
  if (typeof encoded !== 'string') throw new BadRequestError(`${where}.value must be a base64 string`, { index })
  // Check the encoded length first so an oversized value is refused without decoding it.
  if (encoded.length > Math.ceil(maxValueBytes / 3) * 4) throw valueTooLarge(where, index, maxValueBytes)
  if (encoded.length % 4 !== 0 || !BASE64_PATTERN.test(encoded)) {
    throw new BadRequestError(`${where}.value is not valid base64 (standard alphabet, with padding)`, { index })
  }
  const value = Buffer.from(encoded, 'base64')
  if (value.byteLength > maxValueBytes) throw valueTooLarge(where, index, maxValueBytes)
  return value
}

function valueTooLarge(where: string, index: number, maxValueBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`${where}.value is larger than the limit of ${maxValueBytes} bytes`, { index, maxValueBytes })
}

function checkTtl(ttl: unknown, where: string, index: number): number {
  if (typeof ttl === 'number' && Number.isInteger(ttl) && ttl >= 1 && ttl <= MAX_TTL_SECONDS) return ttl
  throw new BadRequestError(`${where}.ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}`, { index, param: 'ttl' })
}

/** The body's `w` may be a name or a JSON number; both follow the query parameter's rule. */
function parseBodyLevel(w: unknown): ConsistencyLevel {
  if (typeof w === 'string') return parseConsistencyLevel(w, 'w')
  if (typeof w === 'number' && Number.isInteger(w)) return parseConsistencyLevel(String(w), 'w')
  throw new BadRequestError('batch "w" must be one, quorum, all or a number')
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
