import type { ApiLimits } from '../limits.js'

/**
 * The client stream protocol (docs/client-protocol.md): MessagePack frames over one WebSocket
 * on the API port, many requests in flight per socket, answers in any order. Both sides import
 * these definitions; the HTTP API stays the reference for what each operation means.
 *
 * A WebSocket message is one or more frames back to back (a MessagePack sequence), as on the
 * peer port. A request frame is the array `[requestId, op, ...args]`; its answer is
 * `[requestId, status, ...result]` with an HTTP status code, or `[requestId, status, errorBody]`
 * for an error, where errorBody is exactly the JSON body the HTTP API answers with.
 */

/** Path of the WebSocket upgrade on the API port; the `v1` changes with any incompatible change. */
export const STREAM_PATH = '/v1/stream'

/**
 * Every HTTP answer of a node that speaks the stream protocol names its path in this header, so
 * a client learns it from its first answer and never probes a node that does not (an older
 * node, a proxy, a stand-in in tests).
 */
export const STREAM_ADVERT_HEADER = 'hearsay-stream'
/** Upgrade answer headers: the bounds this server holds each connection to. */
export const MAX_IN_FLIGHT_HEADER = 'hearsay-stream-max-in-flight'
export const MAX_MESSAGE_BYTES_HEADER = 'hearsay-stream-max-message-bytes'

/** Operation codes, the second entry of a request frame. */
export const OP_GET = 1
export const OP_PUT = 2
export const OP_DELETE = 3
export const OP_BATCH = 4
/** Linearizable compare-and-set (PUT/DELETE ?ifVersion=) and counter (POST /kv/{key}/incr). */
export const OP_CAS = 5
export const OP_INCR = 6
/** Watch operations (lib/api/binary/watches.ts): watch, credit (8, never answered), unwatch. */
export const OP_WATCH = 7
export const OP_UNWATCH = 9
export type OpCode = typeof OP_GET | typeof OP_PUT | typeof OP_DELETE | typeof OP_BATCH | typeof OP_CAS | typeof OP_INCR | typeof OP_WATCH | typeof OP_UNWATCH

/** Names of the operations, for metrics and logs. */
export const OP_NAMES: Readonly<Record<OpCode, string>> = { [OP_GET]: 'GET', [OP_PUT]: 'PUT', [OP_DELETE]: 'DELETE', [OP_BATCH]: 'BATCH', [OP_CAS]: 'CAS', [OP_INCR]: 'INCR', [OP_WATCH]: 'WATCH', [OP_UNWATCH]: 'UNWATCH' }

/** A get whose level is this string is a linearizable read (GET ?consistency=linearizable). */
export const LINEARIZABLE_LEVEL = 'linearizable'

export const STATUS_OK = 200

/** Request ids are 1 … MAX_REQUEST_ID (a MessagePack uint32); a client wraps around. */
export const MAX_REQUEST_ID = 0xffff_ffff

/**
 * WebSocket close codes (RFC 6455 §7.4.1). A frame without a usable requestId cannot be
 * answered, so the socket closes with one of these and a reason.
 */
export const CLOSE_NORMAL = 1000
export const CLOSE_GOING_AWAY = 1001
export const CLOSE_PROTOCOL_ERROR = 1002
export const CLOSE_UNSUPPORTED_DATA = 1003
export const CLOSE_INVALID_PAYLOAD = 1007
export const CLOSE_POLICY_VIOLATION = 1008
export const CLOSE_INTERNAL_ERROR = 1011
/** A close frame's reason is at most 123 bytes. */
export const MAX_CLOSE_REASON_CHARS = 120

export interface StreamLimits {
  /** Largest WebSocket message either side sends; a larger incoming one closes the socket (1009). */
  readonly maxMessageBytes: number
  /** Requests one connection may have unanswered; the server answers more with 503 and stops reading. */
  readonly maxInFlightPerConnection: number
  /** Open stream connections per node; further upgrades answer 503. */
  readonly maxConnections: number
  /**
   * Memory one connection may hold, in bytes: messages read and not yet answered, a partial
   * message, the largest answer of each running request (reserved before it runs) and answers
   * not yet written to the socket. When it is full the server stops reading the connection.
   */
  readonly maxConnectionBytes: number
  /** The same, for every stream connection of the node together; a request that does not fit answers 503. */
  readonly maxTotalBytes: number
  /** Time a message may take to arrive once its first bytes are read; a slower one closes the connection (1008). */
  readonly messageTimeoutMs: number
  /** Time a connection may stay open with nothing in flight and no message; then it is closed (1000). */
  readonly idleTimeoutMs: number
  /** Ping interval; a connection silent for a whole interval after a ping is cut. */
  readonly keepaliveIntervalMs: number
  /** On shutdown, how long a closed connection gets to finish its close handshake before it is cut. */
  readonly closeTimeoutMs: number
}

/** Defaults of the memory bounds (config: api.maxStreamConnectionBytes, api.maxStreamTotalBytes, api.streamMessageTimeoutMs, api.streamIdleTimeoutMs). */
export const DEFAULT_STREAM_CONNECTION_BYTES = 32 * 1024 * 1024
export const DEFAULT_STREAM_TOTAL_BYTES = 256 * 1024 * 1024
export const DEFAULT_STREAM_MESSAGE_TIMEOUT_MS = 10_000
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000

/** Room a frame needs around its key and value: ids, op, levels, ttl, MessagePack headers. */
export const FRAME_OVERHEAD_BYTES = 1024

/**
 * A message must carry the largest request the HTTP API accepts: one value of maxValueBytes, or
 * a batch as large as maxBatchBodyBytes.
 */
export function streamLimitsFor(api: ApiLimits): StreamLimits {
  return {
    maxMessageBytes: Math.max(api.maxBatchBodyBytes, api.maxValueBytes + api.maxKeyBytes + FRAME_OVERHEAD_BYTES),
    maxInFlightPerConnection: 1024,
    maxConnections: 1024,
    maxConnectionBytes: DEFAULT_STREAM_CONNECTION_BYTES,
    maxTotalBytes: DEFAULT_STREAM_TOTAL_BYTES,
    messageTimeoutMs: DEFAULT_STREAM_MESSAGE_TIMEOUT_MS,
    idleTimeoutMs: DEFAULT_STREAM_IDLE_TIMEOUT_MS,
    keepaliveIntervalMs: 30_000,
    closeTimeoutMs: 1000,
  }
}
