import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { RawData, WebSocket } from 'ws'
import { formatVersion } from '../../clock/version.js'
import { NotFoundError, UnavailableError, type HearsayError } from '../../errors.js'
import type { LinearizableService } from '../../paxos/service.js'
import type { KvService, WriteResult } from '../../replication/service.js'
import { errorAnswer } from '../errors.js'
import type { ApiLimits } from '../limits.js'
import { ByteBudget } from './budget.js'
import type { StreamCodec } from './codec.js'
import type { MalformedStreamReason, StreamCounters } from './counters.js'
import { Outbox } from './outbox.js'
import {
  CLOSE_INTERNAL_ERROR, CLOSE_INVALID_PAYLOAD, CLOSE_NORMAL, CLOSE_POLICY_VIOLATION, CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED_DATA, MAX_CLOSE_REASON_CHARS,
  OP_BATCH, OP_CAS, OP_DELETE, OP_GET, OP_INCR, OP_PUT, STATUS_OK, type OpCode, type StreamLimits,
} from './protocol.js'
import { ProtocolViolationError, frameRequestId, parseRequest, type StreamRequest } from './requests.js'
import { ConnectionWatches, OP_CREDIT, OP_UNWATCH, OP_WATCH } from './watches.js'
import type { WatchPort } from '../watch-route.js'

/**
 * One client's stream connection on the server: reads request frames, runs each through the same
 * KvService the HTTP routes call, and answers as each finishes (out of order), coalescing the
 * answers of one event-loop turn into one message. It holds the client to its bounds: at most
 * maxInFlightPerConnection unanswered requests (more are answered 503), and a memory budget of
 * maxConnectionBytes inside the node's maxTotalBytes, counted before the memory is spent:
 *
 * - a message the socket delivered is held until every request it carried is answered (a put's
 *   value is a view into it), and a partial message while ws assembles it;
 * - a request reserves the largest answer it can produce before it runs (a get: maxValueBytes,
 *   since the value's size is known only once it is read), and keeps the answer's real size
 *   until the answer has been written to the socket.
 *
 * A request that does not fit waits, and the socket is not read while any waits or the budget is
 * full: a client that does not read its answers is slowed by TCP, not buffered. A request that
 * does not fit in the node's budget is answered 503 at once. A partial message must be complete
 * within messageTimeoutMs of reading (time the server does not read does not count).
 * A frame without a usable requestId closes the connection with a reason; no input can make an
 * exception escape an event handler.
 */

export interface ConnectionContext {
  readonly kv: KvService
  /** Linearizable operations; absent = they answer 503. */
  readonly linearizable: LinearizableService | undefined
  readonly limits: ApiLimits
  readonly streamLimits: StreamLimits
  readonly codec: StreamCodec
  readonly counters: StreamCounters
  readonly log: Logger
  /** Bytes held for every stream connection of the node (the parent of each connection's budget). */
  readonly nodeBudget: ByteBudget
  /** A limit refused work: counted and logged (rate-limited) by the server. */
  refused(limit: string, detail: Record<string, unknown>): void
  /** Why new requests are refused right now (shutting down, paused, overloaded), if they are. */
  refusal(): HearsayError | undefined
  /** Accounting of the stream requests being handled, for the node-wide bound and for draining. */
  requestStarted(): void
  requestFinished(): void
  /** The node's watches; absent = a watch answers 503. */
  readonly watches?: WatchPort
}

/** Bytes an answer's MessagePack needs besides its value or key: id, status, version, acks. */
const ANSWER_OVERHEAD_BYTES = 256
/** Bytes a batch answer needs per operation: a version string and an ack count. */
const BATCH_ANSWER_BYTES_PER_OP = 64

/** A request read from a message, waiting for room in the budget before it runs. */
interface WaitingRequest {
  readonly id: number
  readonly request: StreamRequest
  readonly message: HeldMessage
  /** The largest answer the request can produce. */
  readonly reserveBytes: number
}

/** A message the socket delivered, held until every request it carried is answered. */
interface HeldMessage {
  readonly bytes: number
  /** Requests of the message not yet answered, plus one while the message is being read. */
  pending: number
}

export class ServerStreamConnection {
  readonly #socket: WebSocket
  readonly #context: ConnectionContext
  readonly #outbox: Outbox
  /** Memory held for this connection, inside the node's budget. */
  readonly #budget: ByteBudget
  /** Requests read and not yet answered (waiting or running), by requestId. */
  readonly #inFlight = new Set<number>()
  /** Requests waiting for room in the budget, in arrival order. */
  readonly #waiting: WaitingRequest[] = []
  /**
   * Bytes reserved for running requests' answers and for answers not yet written to the socket
   * (the rest of the budget is messages). While it is 0 a request always runs, however large its
   * reservation, so a budget smaller than one answer slows a connection but never stalls it.
   */
  #answerBytes = 0
  /** Bytes of a partial message ws holds, as reserved in the budget. */
  #partialBytes = 0
  /** When the partial message ws holds started to arrive (epoch ms), while the socket is read. */
  #partialSinceMs: number | undefined
  #closed = false
  /** When the connection last received a message or wrote an answer (epoch ms), for idleTimeoutMs. */
  #lastActiveMs = Date.now()
  /** Heard from the client since the last keepalive ping. */
  #heard = true
  #paused = false
  /** Inside #onMessage: answers refused while reading may have siblings from the same message. */
  #reading = false
  /** Watches opened on this connection (they live until unwatched, cut or the connection goes). */
  readonly #watches: ConnectionWatches

  constructor(socket: WebSocket, readonly endpoint: string, context: ConnectionContext, onClosed: (connection: ServerStreamConnection) => void, rawSocket?: Duplex) {
    this.#socket = socket
    this.#context = context
    this.#budget = new ByteBudget(context.streamLimits.maxConnectionBytes, context.nodeBudget)
    this.#outbox = new Outbox(this.#write, context.streamLimits.maxMessageBytes)
    this.#watches = new ConnectionWatches(context.watches, {
      sendFrame: (frame) => this.#sendWatchFrame(frame),
      unwrittenBytes: () => this.#answerBytes,
    }, { maxWatches: context.streamLimits.maxInFlightPerConnection, maxPrefixBytes: context.limits.maxKeyBytes })
    socket.on('message', this.#guard(this.#onMessage))
    socket.on('pong', () => { this.#heard = true })
    socket.on('error', (error: Error & { code?: string }) => {
      // ws reports a broken WebSocket framing here and then closes the socket itself.
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') context.counters.malformed('oversized')
      else if (error.code?.startsWith('WS_ERR_') === true) context.counters.malformed('websocket')
      context.log.debug({ endpoint, err: error.message }, 'stream connection error')
    })
    // ws's own 'data' listener was added first, so this one sees what ws kept of each chunk.
    rawSocket?.on('data', this.#guard(this.#onData))
    socket.once('close', () => {
      this.#closed = true
      this.#watches.closeAll()
      this.#outbox.close()
      this.#dropWaiting()
      this.#budget.close()
      onClosed(this)
    })
  }

  /** Requests of this connection read and not yet answered. */
  get inFlight(): number {
    return this.#inFlight.size
  }

  /** Bytes this connection holds in its budget. */
  get heldBytes(): number {
    return this.#budget.usedBytes
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
   * Called about once a second: closes a connection idle (nothing in flight, nothing to write, no
   * message) for idleTimeoutMs, and cuts a client whose partial message has taken too long.
   */
  checkTimeouts(nowMs: number): void {
    if (this.#closed) return
    const { idleTimeoutMs, messageTimeoutMs } = this.#context.streamLimits
    if (this.#inFlight.size === 0 && this.#watches.size === 0 && this.#answerBytes === 0 && this.#partialBytes === 0 && nowMs - this.#lastActiveMs > idleTimeoutMs) {
      this.#context.refused('stream_idle_timeout', { endpoint: this.endpoint, idleTimeoutMs })
      this.close(CLOSE_NORMAL, `idle for ${idleTimeoutMs} ms; open a new connection when needed`)
      return
    }
    if (this.#partialSinceMs === undefined) return
    if (nowMs - this.#partialSinceMs <= messageTimeoutMs) return
    this.#context.counters.malformed('partial_timeout')
    this.#context.refused('stream_message_timeout', { endpoint: this.endpoint, partialBytes: this.#partialBytes, messageTimeoutMs })
    this.close(CLOSE_POLICY_VIOLATION, `a message took longer than ${messageTimeoutMs} ms to arrive`)
  }

  /**
   * Sends the answers already queued, then closes with a code and reason; the socket is cut if
   * the client does not finish the close handshake.
   */
  close(code: number, reason: string): void {
    if (this.#closed) return
    this.#closed = true
    this.#dropWaiting()
    this.#outbox.flush()
    this.#outbox.close()
    const socket = this.#socket
    socket.close(code, reason.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_CLOSE_REASON_CHARS))
    setTimeout(() => socket.terminate(), this.#context.streamLimits.closeTimeoutMs).unref()
  }

  /** A chunk of the raw socket, after ws took what it could: count what it keeps of a partial message. */
  readonly #onData = (): void => {
    if (this.#closed) return
    const held = partialMessageBytes(this.#socket)
    if (held > this.#partialBytes) this.#budget.reserve(held - this.#partialBytes)
    else this.#budget.release(this.#partialBytes - held)
    this.#partialBytes = held
    if (held === 0) this.#partialSinceMs = undefined
    else if (this.#partialSinceMs === undefined && !this.#paused) this.#partialSinceMs = Date.now()
    this.#updateFlow()
  }

  readonly #onMessage = (data: RawData, isBinary: boolean): void => {
    if (this.#closed) return
    this.#heard = true
    this.#lastActiveMs = Date.now()
    // The message's bytes are counted below as a held message; a next one starts its own clock.
    this.#partialSinceMs = undefined
    if (!isBinary) return this.#violation('text', CLOSE_UNSUPPORTED_DATA, 'a text message; the stream protocol speaks binary MessagePack')
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
    let frames: unknown[]
    try {
      frames = this.#context.codec.decodeMessage(bytes, this.#context.streamLimits.maxInFlightPerConnection)
    } catch (error) {
      return this.#violation('undecodable', CLOSE_INVALID_PAYLOAD, (error as Error).message)
    }
    const message: HeldMessage = { bytes: bytes.byteLength, pending: 1 }
    this.#budget.reserve(message.bytes)
    this.#reading = true
    try {
      for (const frame of frames) {
        this.#request(frame, message)
        if (this.#closed) return
      }
    } finally {
      this.#reading = false
    }
    this.#messageDone(message)
    this.#pump()
  }

  #request(frame: unknown, message: HeldMessage): void {
    // Credit for a watch: request id 0, never answered.
    if (Array.isArray(frame) && frame[0] === 0 && frame[1] === OP_CREDIT) {
      try {
        return this.#watches.credit(frame)
      } catch (error) {
        if (!(error instanceof ProtocolViolationError)) throw error
        return this.#violation('bad_frame', CLOSE_PROTOCOL_ERROR, error.message)
      }
    }
    let id: number
    try {
      id = frameRequestId(frame)
    } catch (error) {
      if (!(error instanceof ProtocolViolationError)) throw error
      return this.#violation('bad_frame', CLOSE_PROTOCOL_ERROR, error.message)
    }
    if (this.#inFlight.has(id) || this.#watches.has(id)) return this.#violation('duplicate_id', CLOSE_PROTOCOL_ERROR, `requestId ${id} is already in flight on this connection`)
    const fields = frame as unknown[]
    if (fields[1] === OP_WATCH || fields[1] === OP_UNWATCH) return this.#watchRequest(id, fields)
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
    message.pending++
    this.#waiting.push({ id, request, message, reserveBytes: answerBoundBytes(request, this.#context.limits.maxValueBytes) })
  }

  /** Watch and unwatch run at once: they hold no answer budget (events are counted as they are sent). */
  #watchRequest(id: number, fields: readonly unknown[]): void {
    const op = fields[1] === OP_WATCH ? OP_WATCH : OP_UNWATCH
    try {
      const refusal = this.#context.refusal()
      if (refusal !== undefined) throw refusal
      if (op === OP_WATCH) {
        this.#watches.open(id, fields)
        this.#context.counters.answered(op, STATUS_OK)
        return
      }
      if (!this.#watches.unwatch(fields)) throw new NotFoundError(`no watch ${String(fields[2])} on this connection`)
      this.#send([id, STATUS_OK], op, STATUS_OK)
    } catch (error) {
      this.#answerError(id, op, error)
    }
  }

  /** A watch's frame (open, events, end): counted in the budget like an answer until it is written. */
  #sendWatchFrame(frame: unknown[]): void {
    if (this.#closed) return
    const bytes = this.#context.codec.encode(frame)
    this.#budget.reserve(bytes.byteLength)
    this.#answerBytes += bytes.byteLength
    this.#outbox.push(bytes)
  }

  /** Starts waiting requests while the budget has room for their answers. */
  #pump(): void {
    while (!this.#closed && this.#waiting.length > 0) {
      const next = this.#waiting[0] as WaitingRequest
      if (!this.#budget.parentFits(next.reserveBytes)) {
        // The node's budget is full: waiting would hold this connection on others' clients.
        this.#waiting.shift()
        this.#context.refused('stream_node_budget', { endpoint: this.endpoint, maxTotalBytes: this.#context.nodeBudget.limitBytes })
        this.#answerError(next.id, next.request.op, nodeBudgetFull(this.#context.nodeBudget.limitBytes))
        this.#settled(next.id)
        this.#messageDone(next.message)
        continue
      }
      if (this.#answerBytes > 0 && !this.#budget.fits(next.reserveBytes)) break
      this.#waiting.shift()
      this.#start(next)
    }
    this.#updateFlow()
  }

  #start(waiting: WaitingRequest): void {
    const { id, request, message, reserveBytes } = waiting
    this.#budget.reserve(reserveBytes)
    this.#answerBytes += reserveBytes
    execute(this.#context, request).then(
      answer => this.#finish(id, message, reserveBytes, () => {
        answer[0] = id
        this.#send(answer, request.op, answer[1] as number, reserveBytes)
      }),
      (error: unknown) => this.#finish(id, message, reserveBytes, () => this.#answerError(id, request.op, error, reserveBytes)),
    )
  }

  /** Settles request `id` and answers it; a bug while answering closes this connection, never the daemon. */
  #finish(id: number, message: HeldMessage, reservedBytes: number, answer: () => void): void {
    this.#settled(id)
    try {
      answer()
    } catch (error) {
      this.#release(reservedBytes)
      this.#context.log.error({ err: error, endpoint: this.endpoint }, 'answering a stream request failed')
      this.close(CLOSE_INTERNAL_ERROR, 'internal error')
    }
    this.#messageDone(message)
    this.#pump()
  }

  #settled(id: number): void {
    if (this.#inFlight.delete(id)) this.#context.requestFinished()
  }

  /** The connection is closing: requests that have not started never will. */
  #dropWaiting(): void {
    for (const waiting of this.#waiting.splice(0)) this.#settled(waiting.id)
  }

  #messageDone(message: HeldMessage): void {
    message.pending--
    if (message.pending === 0) this.#budget.release(message.bytes)
  }

  /** `reservedBytes`: what the request reserved for its answer (0 for one refused before it ran). */
  #answerError(id: number, op: OpCode | undefined, error: unknown, reservedBytes = 0): void {
    const answer = errorAnswer(error)
    if (answer.unexpected) this.#context.log.error({ err: error, endpoint: this.endpoint, op }, 'stream request failed with an unexpected error')
    this.#send([id, answer.status, answer.body], op, answer.status, reservedBytes)
  }

  /** Queues an answer; its real size replaces the `reservedBytes` its request held until it is written. */
  #send(frame: unknown[], op: OpCode | undefined, status: number, reservedBytes = 0): void {
    this.#context.counters.answered(op, status)
    if (this.#closed) return
    let bytes: Uint8Array
    try {
      bytes = this.#context.codec.encode(frame)
    } catch (error) {
      this.#release(reservedBytes)
      this.#context.log.error({ err: error, endpoint: this.endpoint, op }, 'could not encode a stream answer')
      return this.close(CLOSE_INTERNAL_ERROR, 'the server could not encode an answer')
    }
    // An answer is at most its reservation but for small error answers, which are bounded.
    if (bytes.byteLength > reservedBytes) this.#budget.reserve(bytes.byteLength - reservedBytes)
    else this.#budget.release(reservedBytes - bytes.byteLength)
    this.#answerBytes += bytes.byteLength - reservedBytes
    // The last request in flight: no other answer can join this one this turn.
    this.#outbox.push(bytes, this.#inFlight.size === 0 && !this.#reading)
  }

  #release(bytes: number): void {
    this.#answerBytes -= bytes
    this.#budget.release(bytes)
  }

  readonly #write = (message: Uint8Array): void => {
    const bytes = message.byteLength
    // The callback runs once ws handed the message to the kernel (or failed to): its bytes are free.
    this.#socket.send(message, { binary: true }, () => {
      if (this.#closed) return
      this.#lastActiveMs = Date.now()
      this.#release(bytes)
      this.#pump()
      if (this.#watches.size > 0) this.#watches.drained()
    })
  }

  /**
   * Reads the socket only while nothing waits for room, the in-flight bound is not reached and
   * neither budget is full; otherwise waits for a release anywhere in the node's budget.
   */
  #updateFlow(): void {
    if (this.#closed) return
    const { maxInFlightPerConnection } = this.#context.streamLimits
    const nodeBudget = this.#context.nodeBudget
    const blocked = this.#waiting.length > 0
      || this.#inFlight.size >= maxInFlightPerConnection
      || this.#budget.usedBytes >= this.#budget.limitBytes
      || nodeBudget.usedBytes >= nodeBudget.limitBytes
    if (blocked && !this.#paused) {
      this.#paused = true
      // Time the server does not read does not count against a partial message.
      this.#partialSinceMs = undefined
      this.#socket.pause()
    } else if (!blocked && this.#paused) {
      this.#paused = false
      if (this.#partialBytes > 0) this.#partialSinceMs = Date.now()
      this.#socket.resume()
    }
    if (blocked) nodeBudget.whenReleased(this.#onReleased)
  }

  readonly #onReleased = (): void => {
    if (this.#closed) return
    try {
      this.#pump()
    } catch (error) {
      this.#context.log.error({ err: error, endpoint: this.endpoint }, 'stream connection handler failed')
      this.close(CLOSE_INTERNAL_ERROR, 'internal error')
    }
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

/** The largest answer `request` can produce, reserved before it runs. */
function answerBoundBytes(request: StreamRequest, maxValueBytes: number): number {
  switch (request.op) {
    case OP_GET: return maxValueBytes + Buffer.byteLength(request.key) + ANSWER_OVERHEAD_BYTES
    case OP_BATCH: return ANSWER_OVERHEAD_BYTES + request.operations.length * BATCH_ANSWER_BYTES_PER_OP
    default: return ANSWER_OVERHEAD_BYTES
  }
}

/**
 * Bytes of a partial message ws holds for `socket`: what it buffered of the socket and the
 * fragments of a message not yet complete. ws does not expose this; its receiver's fields are
 * read defensively (0 if they change shape), and the message size bound still holds either way.
 */
function partialMessageBytes(socket: WebSocket): number {
  const receiver = (socket as unknown as { _receiver?: { _bufferedBytes?: unknown; _fragments?: unknown } })._receiver
  if (receiver === undefined) return 0
  let bytes = typeof receiver._bufferedBytes === 'number' ? receiver._bufferedBytes : 0
  if (Array.isArray(receiver._fragments)) for (const fragment of receiver._fragments) if (fragment instanceof Uint8Array) bytes += fragment.byteLength
  return bytes
}

/**
 * Runs one request and returns its answer frame; the caller fills in the requestId at [0].
 * Errors reject and are answered by errorAnswer, as on the HTTP API.
 */
async function execute(context: ConnectionContext, request: StreamRequest): Promise<unknown[]> {
  const { kv, counters } = context
  switch (request.op) {
    case OP_GET: {
      const found = request.linearizable === true ? await strong(context).read(request.key) : await kv.get(request.key, request.options)
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
    case OP_CAS: {
      const result = await strong(context).compareAndSet(request.key, request.value, request.ifVersion)
      counters.wrote('cas')
      return [0, STATUS_OK, formatVersion(result.version)]
    }
    case OP_INCR: {
      const result = await strong(context).increment(request.key, request.by)
      counters.wrote('incr')
      return [0, STATUS_OK, result.value, formatVersion(result.version)]
    }
  }
}

function strong(context: ConnectionContext): LinearizableService {
  if (context.linearizable === undefined) throw new UnavailableError('linearizable operations are not available on this node')
  return context.linearizable
}

function writeAnswer(result: WriteResult): unknown[] {
  return [0, STATUS_OK, formatVersion(result.version), result.acks, result.needed]
}

function opCodeOf(op: unknown): OpCode | undefined {
  return op === OP_GET || op === OP_PUT || op === OP_DELETE || op === OP_BATCH || op === OP_CAS || op === OP_INCR ? op : undefined
}

/** Every stream connection together holds the node's budget. */
function nodeBudgetFull(maxTotalBytes: number): HearsayError {
  return new UnavailableError(`this node holds its limit of ${maxTotalBytes} bytes for stream requests and answers; retry shortly`, { maxStreamTotalBytes: maxTotalBytes })
}

/** The client sent more requests than the in-flight bound it was told in the upgrade answer. */
function tooManyInFlight(maxInFlight: number): HearsayError {
  return new UnavailableError(`more than ${maxInFlight} requests in flight on one stream connection; wait for answers before sending more`, { maxInFlight })
}
