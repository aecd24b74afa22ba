import type { Logger } from 'pino'
import type { RawData, WebSocket } from 'ws'
import { formatVersion } from '../../clock/version.js'
import { UnavailableError, type HearsayError } from '../../errors.js'
import type { KvService, WriteResult } from '../../replication/service.js'
import { errorAnswer } from '../errors.js'
import type { ApiLimits } from '../limits.js'
import type { StreamCodec } from './codec.js'
import type { MalformedStreamReason, StreamCounters } from './counters.js'
import { Outbox } from './outbox.js'
import {
  CLOSE_INTERNAL_ERROR, CLOSE_INVALID_PAYLOAD, CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED_DATA, MAX_CLOSE_REASON_CHARS,
  OP_BATCH, OP_DELETE, OP_GET, OP_PUT, STATUS_OK, type OpCode, type StreamLimits,
} from './protocol.js'
import { ProtocolViolationError, frameRequestId, parseRequest, type StreamRequest } from './requests.js'

/**
 * One client's stream connection on the server: reads request frames, runs each through the same
 * KvService the HTTP routes call, and answers as each finishes (out of order), coalescing the
 * answers of one event-loop turn into one message. It holds the client to its bounds: at most
 * maxInFlightPerConnection unanswered requests (more are answered 503, and the socket is not
 * read until answers go out), and at most maxBufferedBytes of answers the client has not read.
 * A frame without a usable requestId closes the connection with a reason; no input can make an
 * exception escape an event handler.
 */

export interface ConnectionContext {
  readonly kv: KvService
  readonly limits: ApiLimits
  readonly streamLimits: StreamLimits
  readonly codec: StreamCodec
  readonly counters: StreamCounters
  readonly log: Logger
  /** Why new requests are refused right now (shutting down, paused, overloaded), if they are. */
  refusal(): HearsayError | undefined
  /** Accounting of the stream requests being handled, for the node-wide bound and for draining. */
  requestStarted(): void
  requestFinished(): void
}

export class ServerStreamConnection {
  readonly #socket: WebSocket
  readonly #context: ConnectionContext
  readonly #outbox: Outbox
  /** Requests read and not yet answered, by requestId. */
  readonly #inFlight = new Set<number>()
  #closed = false
  /** Heard from the client since the last keepalive ping. */
  #heard = true
  #pausedForInFlight = false
  #pausedForBuffer = false

  constructor(socket: WebSocket, readonly endpoint: string, context: ConnectionContext, onClosed: (connection: ServerStreamConnection) => void) {
    this.#socket = socket
    this.#context = context
    this.#outbox = new Outbox(this.#write, context.streamLimits.maxMessageBytes)
    socket.on('message', this.#guard(this.#onMessage))
    socket.on('pong', () => { this.#heard = true })
    socket.on('error', (error: Error & { code?: string }) => {
      // ws reports a broken WebSocket framing here and then closes the socket itself.
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') context.counters.malformed('oversized')
      else if (error.code?.startsWith('WS_ERR_') === true) context.counters.malformed('websocket')
      context.log.debug({ endpoint, err: error.message }, 'stream connection error')
    })
    socket.once('close', () => {
      this.#closed = true
      this.#outbox.close()
      onClosed(this)
    })
  }

  /** Requests of this connection being handled now. */
  get inFlight(): number {
    return this.#inFlight.size
  }

  /** Called every keepalive interval: cuts a client silent since the last ping, pings the others. */
  keepalive(): void {
    if (this.#closed) return
    if (!this.#heard) {
      this.#context.counters.malformed('keepalive')
      this.#context.log.debug({ endpoint: this.endpoint }, 'stream client did not answer a ping; connection cut')
      this.#socket.terminate()
      return
    }
    this.#heard = false
    this.#socket.ping()
  }

  /**
   * Sends the answers already queued, then closes with a code and reason; the socket is cut if
   * the client does not finish the close handshake.
   */
  close(code: number, reason: string): void {
    if (this.#closed) return
    this.#closed = true
    this.#outbox.flush()
    this.#outbox.close()
    const socket = this.#socket
    socket.close(code, reason.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_CLOSE_REASON_CHARS))
    setTimeout(() => socket.terminate(), this.#context.streamLimits.closeTimeoutMs).unref()
  }

  readonly #onMessage = (data: RawData, isBinary: boolean): void => {
    if (this.#closed) return
    this.#heard = true
    if (!isBinary) return this.#violation('text', CLOSE_UNSUPPORTED_DATA, 'a text message; the stream protocol speaks binary MessagePack')
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
    let frames: unknown[]
    try {
      frames = this.#context.codec.decodeMessage(bytes, this.#context.streamLimits.maxInFlightPerConnection)
    } catch (error) {
      return this.#violation('undecodable', CLOSE_INVALID_PAYLOAD, (error as Error).message)
    }
    for (const frame of frames) {
      this.#request(frame)
      if (this.#closed) return
    }
    if (!this.#pausedForInFlight && this.#inFlight.size >= this.#context.streamLimits.maxInFlightPerConnection) {
      this.#pausedForInFlight = true
      this.#socket.pause()
    }
  }

  #request(frame: unknown): void {
    let id: number
    try {
      id = frameRequestId(frame)
    } catch (error) {
      if (!(error instanceof ProtocolViolationError)) throw error
      return this.#violation('bad_frame', CLOSE_PROTOCOL_ERROR, error.message)
    }
    if (this.#inFlight.has(id)) return this.#violation('duplicate_id', CLOSE_PROTOCOL_ERROR, `requestId ${id} is already in flight on this connection`)
    const fields = frame as unknown[]
    const op = opCodeOf(fields[1])
    const { streamLimits } = this.#context
    let request: StreamRequest
    try {
      if (this.#inFlight.size >= streamLimits.maxInFlightPerConnection) throw tooManyInFlight(streamLimits.maxInFlightPerConnection)
      const refusal = this.#context.refusal()
      if (refusal !== undefined) throw refusal
      request = parseRequest(fields, this.#context.limits)
    } catch (error) {
      return this.#answerError(id, op, error)
    }
    this.#inFlight.add(id)
    this.#context.requestStarted()
    execute(this.#context, request).then(
      answer => this.#finish(id, () => {
        answer[0] = id
        this.#send(answer, request.op, answer[1] as number)
      }),
      (error: unknown) => this.#finish(id, () => this.#answerError(id, request.op, error)),
    )
  }

  /** Settles request `id` and answers it; a bug while answering closes this connection, never the daemon. */
  #finish(id: number, answer: () => void): void {
    this.#settled(id)
    try {
      answer()
    } catch (error) {
      this.#context.log.error({ err: error, endpoint: this.endpoint }, 'answering a stream request failed')
      this.close(CLOSE_INTERNAL_ERROR, 'internal error')
    }
  }

  #settled(id: number): void {
    this.#inFlight.delete(id)
    this.#context.requestFinished()
    if (this.#pausedForInFlight && this.#inFlight.size < this.#context.streamLimits.maxInFlightPerConnection) {
      this.#pausedForInFlight = false
      this.#resumeIfFree()
    }
  }

  #answerError(id: number, op: OpCode | undefined, error: unknown): void {
    const answer = errorAnswer(error)
    if (answer.unexpected) this.#context.log.error({ err: error, endpoint: this.endpoint, op }, 'stream request failed with an unexpected error')
    this.#send([id, answer.status, answer.body], op, answer.status)
  }

  #send(frame: unknown[], op: OpCode | undefined, status: number): void {
    this.#context.counters.answered(op, status)
    if (this.#closed) return
    let bytes: Uint8Array
    try {
      bytes = this.#context.codec.encode(frame)
    } catch (error) {
      this.#context.log.error({ err: error, endpoint: this.endpoint, op }, 'could not encode a stream answer')
      return this.close(CLOSE_INTERNAL_ERROR, 'the server could not encode an answer')
    }
    this.#outbox.push(bytes)
  }

  readonly #write = (message: Uint8Array): void => {
    const socket = this.#socket
    socket.send(message, { binary: true }, this.#written)
    if (!this.#pausedForBuffer && socket.bufferedAmount > this.#context.streamLimits.maxBufferedBytes) {
      // The client is not reading its answers: stop reading its requests until it does.
      this.#pausedForBuffer = true
      socket.pause()
    }
  }

  readonly #written = (): void => {
    if (this.#pausedForBuffer && this.#socket.bufferedAmount <= this.#context.streamLimits.maxBufferedBytes) {
      this.#pausedForBuffer = false
      this.#resumeIfFree()
    }
  }

  #resumeIfFree(): void {
    if (!this.#closed && !this.#pausedForBuffer && !this.#pausedForInFlight) this.#socket.resume()
  }

  #violation(reason: MalformedStreamReason, code: number, detail: string): void {
    this.#context.counters.malformed(reason)
    this.#context.log.debug({ endpoint: this.endpoint, reason, detail }, 'stream connection closed after a malformed message')
    this.close(code, detail)
  }

  /** Event handlers must never throw into ws: a bug closes this connection, not the daemon. */
  #guard<A extends unknown[]>(handler: (...args: A) => void): (...args: A) => void {
    return (...args) => {
      try {
        handler(...args)
      } catch (error) {
        this.#context.log.error({ err: error, endpoint: this.endpoint }, 'stream connection handler failed')
        this.close(CLOSE_INTERNAL_ERROR, 'internal error')
      }
    }
  }
}

/**
 * Runs one request and returns its answer frame; the caller fills in the requestId at [0].
 * Errors reject and are answered by errorAnswer, as on the HTTP API.
 */
async function execute(context: ConnectionContext, request: StreamRequest): Promise<unknown[]> {
  const { kv, counters } = context
  switch (request.op) {
    case OP_GET: {
      const found = await kv.get(request.key, request.options)
      // The body NotFoundError would answer with, built without an exception on a hot path.
      if (found === undefined) return [0, 404, { key: request.key, error: `key ${JSON.stringify(request.key)} not found` }]
      return [0, STATUS_OK, found.value, formatVersion(found.version)]
    }
    case OP_PUT: {
      const result = await kv.put(request.key, request.value, request.options)
      counters.wrote('put')
      return writeAnswer(result)
    }
    case OP_DELETE: {
      const result = await kv.delete(request.key, request.options)
      counters.wrote('delete')
      return writeAnswer(result)
    }
    case OP_BATCH: {
      const results = await kv.batch(request.operations, request.options)
      for (const operation of request.operations) counters.wrote(operation.op)
      return [0, STATUS_OK, results.map(result => [formatVersion(result.version), result.acks])]
    }
  }
}

function writeAnswer(result: WriteResult): unknown[] {
  return [0, STATUS_OK, formatVersion(result.version), result.acks, result.needed]
}

function opCodeOf(op: unknown): OpCode | undefined {
  return op === OP_GET || op === OP_PUT || op === OP_DELETE || op === OP_BATCH ? op : undefined
}

/** The client sent more requests than the in-flight bound it was told in the upgrade answer. */
function tooManyInFlight(maxInFlight: number): HearsayError {
  return new UnavailableError(`more than ${maxInFlight} requests in flight on one stream connection; wait for answers before sending more`, { maxInFlight })
}
