import { LINEARIZABLE_LEVEL, OP_BATCH, OP_CAS, OP_DELETE, OP_GET, OP_INCR, OP_PUT, STATUS_OK } from '../../api/binary/protocol.js'
import type { ConsistencyLevel } from '../../replication/consistency.js'
import { HearsayClientError, InvalidReplyError, type ErrorBody } from '../errors.js'
import type { BatchResult, CasReply, IncrReply, WriteReply } from '../replies.js'

/**
 * Request frames the client sends and the answers it reads (docs/client-protocol.md), checked
 * on arrival like the HTTP answers in replies.ts: a wrong answer fails here, naming what is wrong.
 * Frames start with a 0 where the connection puts the requestId.
 */

export type StreamBatchOp =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array; readonly ttlSeconds?: number }
  | { readonly op: 'delete'; readonly key: string }

export function getFrame(key: string, r: ConsistencyLevel | undefined): unknown[] {
  return r === undefined ? [0, OP_GET, key] : [0, OP_GET, key, r]
}

export function linearizableGetFrame(key: string): unknown[] {
  return [0, OP_GET, key, LINEARIZABLE_LEVEL]
}

export function casFrame(key: string, value: Uint8Array | null, ifVersion: string): unknown[] {
  return [0, OP_CAS, key, value, ifVersion]
}

export function incrFrame(key: string, by: number): unknown[] {
  return by === 1 ? [0, OP_INCR, key] : [0, OP_INCR, key, by]
}

/** `[id, 200, version]`. */
export function parseCasAnswer(node: string, key: string, frame: readonly unknown[]): CasReply {
  throwUnlessOk(node, frame)
  return { key, version: version(node, frame[2], 'a compare-and-set answer') }
}

/** `[id, 200, value, version]`, value a decimal integer string. */
export function parseIncrAnswer(node: string, key: string, frame: readonly unknown[]): IncrReply {
  throwUnlessOk(node, frame)
  const value = frame[2]
  if (typeof value !== 'string' || !/^-?[0-9]+$/.test(value)) throw new InvalidReplyError(node, 'an incr answer whose value is not a decimal integer string')
  return { key, value, version: version(node, frame[3], 'an incr answer') }
}

export function putFrame(key: string, value: Uint8Array, w: ConsistencyLevel | undefined, ttlSeconds: number | undefined): unknown[] {
  if (ttlSeconds !== undefined) return [0, OP_PUT, key, value, w ?? null, ttlSeconds]
  return w === undefined ? [0, OP_PUT, key, value] : [0, OP_PUT, key, value, w]
}

export function deleteFrame(key: string, w: ConsistencyLevel | undefined): unknown[] {
  return w === undefined ? [0, OP_DELETE, key] : [0, OP_DELETE, key, w]
}

export function batchFrame(ops: readonly StreamBatchOp[], w: ConsistencyLevel | undefined): unknown[] {
  const wireOps = ops.map(op => op.op === 'delete'
    ? [OP_DELETE, op.key]
    : op.ttlSeconds === undefined ? [OP_PUT, op.key, op.value] : [OP_PUT, op.key, op.value, op.ttlSeconds])
  return w === undefined ? [0, OP_BATCH, wireOps] : [0, OP_BATCH, wireOps, w]
}

/** `[id, 200, version, acks, w]`, the key being the one asked for. */
export function parseWriteAnswer(node: string, key: string, frame: readonly unknown[]): WriteReply {
  throwUnlessOk(node, frame)
  return { key, version: version(node, frame[2], 'a write answer'), acks: count(node, frame[3], 'a write answer', 'acks'), w: count(node, frame[4], 'a write answer', 'w') }
}

/** `[id, 200, value, version]`; undefined for 404. The value is copied out of the message. */
export function parseGetAnswer(node: string, frame: readonly unknown[]): { value: Buffer; version: string } | undefined {
  if (frame[1] === 404) return undefined
  throwUnlessOk(node, frame)
  const value = frame[2]
  if (!(value instanceof Uint8Array)) throw new InvalidReplyError(node, 'a get answer whose value is not a byte string')
  return { value: Buffer.from(value), version: version(node, frame[3], 'a get answer') }
}

/** `[id, 200, [[version, acks], …]]`, one result per operation, in order. */
export function parseBatchAnswer(node: string, ops: readonly StreamBatchOp[], frame: readonly unknown[]): BatchResult[] {
  throwUnlessOk(node, frame)
  const results = frame[2]
  if (!Array.isArray(results) || results.length !== ops.length) {
    throw new InvalidReplyError(node, `a batch answer without exactly one result for each of the ${ops.length} operations`)
  }
  return results.map((result: unknown, index) => {
    if (!Array.isArray(result)) throw new InvalidReplyError(node, `a batch answer whose result ${index} is not [version, acks]`)
    return { key: (ops[index] as StreamBatchOp).key, version: version(node, result[0], 'a batch result'), acks: count(node, result[1], 'a batch result', 'acks') }
  })
}

/** Any status but 200 is the node's answer to the request, thrown like an HTTP error answer. */
function throwUnlessOk(node: string, frame: readonly unknown[]): void {
  const status = frame[1] as number
  if (status === STATUS_OK) return
  throw new HearsayClientError(node, status, errorBody(node, status, frame[2]))
}

function errorBody(node: string, status: number, body: unknown): ErrorBody {
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && typeof (body as { error?: unknown }).error === 'string') return body as ErrorBody
  return { error: `stream answer ${status} from ${node} without an error message` }
}

function version(node: string, value: unknown, what: string): string {
  if (typeof value !== 'string') throw new InvalidReplyError(node, `${what} whose version is not a string`)
  return value
}

function count(node: string, value: unknown, what: string, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidReplyError(node, `${what} whose "${name}" is not a non-negative integer`)
  return value
}
