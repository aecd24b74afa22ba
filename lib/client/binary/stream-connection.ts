import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { WebSocket, type RawData } from 'ws'
import { StreamCodec } from '../../api/binary/codec.js'
import { Outbox } from '../../api/binary/outbox.js'
import { CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, MAX_IN_FLIGHT_HEADER, MAX_MESSAGE_BYTES_HEADER, MAX_REQUEST_ID } from '../../api/binary/protocol.js'
import { InvalidReplyError } from '../errors.js'
import { NodeUnreachableError, describeNetworkError } from '../http-exchange.js'
import type { ClientTlsOptions } from '../client.js'
import type { NodeUrl } from '../node-urls.js'

/**
 * One WebSocket to one node carrying many requests at once (docs/client-protocol.md). Requests
 * issued in one event-loop turn leave in one message; answers come back in any order and are
 * matched by requestId. At most the server's in-flight bound is unanswered on the wire; further
 * requests wait here, each within its own deadline.
 *
 * Failures map onto the HTTP client's: no connection, a connection lost before the answer, or
 * no answer in time is a NodeUnreachableError (the caller moves on to the next node); an upgrade
 * the node refuses with an HTTP answer, or a request too large for one message, is a
 * StreamNotUsableError (the caller sends that request over HTTP instead).
 */

/** This request should go over HTTP to the same node (which then gives the authoritative answer). */
export class StreamNotUsableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'StreamNotUsableError'
  }
}

export interface StreamConnectionOptions {
  readonly node: NodeUrl
  /** ws:// or wss:// URL of the node's stream endpoint. */
  readonly url: string
  /** `Bearer <token>`, sent with the upgrade request. */
  readonly authorization: string | undefined
  /** Deadline of each request, from the call to its answer; also bounds the upgrade. */
  readonly timeoutMs: number
  /** Largest message accepted from the node. */
  readonly maxResponseBytes: number
  /** CA, certificate and key for a wss:// URL, as for the client's HTTPS requests. */
  readonly tls: ClientTlsOptions
  /** The node answered the upgrade with an HTTP status instead of switching protocols. */
  readonly onRefused: (connection: ClientStreamConnection, status: number) => void
  readonly onClosed: (connection: ClientStreamConnection) => void
}

/** Until the upgrade answer names the server's bounds, assume the protocol's documented defaults. */
const DEFAULT_MAX_IN_FLIGHT = 1024
const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
/** Limits read from the upgrade answer are clamped into this range; anything else is nonsense. */
const MAX_ADVERTISED_IN_FLIGHT = 1 << 20
const MIN_ADVERTISED_MESSAGE_BYTES = 1024

interface Pending {
  readonly id: number
  readonly bytes: Uint8Array
  readonly deadlineMs: number
  /** The connection was already open when the request was made (a reused connection). */
  readonly reused: boolean
  sent: boolean
  resolve(frame: unknown[]): void
  reject(error: Error): void
}

export class ClientStreamConnection {
  readonly #options: StreamConnectionOptions
  readonly #socket: WebSocket
  readonly #codec = new StreamCodec()
  readonly #outbox: Outbox
  #state: 'connecting' | 'open' | 'closed' = 'connecting'
  #tcp: Socket | undefined
  #maxInFlight = DEFAULT_MAX_IN_FLIGHT
  #maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES
  #lastId = 0
  /** Every unanswered request by id; insertion order is deadline order (one timeout for all). */
  readonly #pending = new Map<number, Pending>()
  /** Requests waiting for the connection to open or for in-flight room, oldest first. */
  #waiting: Pending[] = []
  #waitingHead = 0
  #sentUnanswered = 0
  /**
   * Answers received in this event-loop turn (reset at its end). More than one means a burst:
   * its callers are likely to send their next requests in this turn too, which should then leave
   * together rather than one at once and the rest at the turn's end.
   */
  #answersThisTurn = 0
  #deadlineTimer: NodeJS.Timeout | undefined

  constructor(options: StreamConnectionOptions) {
    this.#options = options
    this.#outbox = new Outbox(message => this.#socket.send(message, { binary: true }), DEFAULT_MAX_MESSAGE_BYTES)
    const headers: Record<string, string> = {}
    if (options.authorization !== undefined) headers.authorization = options.authorization
    this.#socket = new WebSocket(options.url, {
      headers,
      perMessageDeflate: false,
      maxPayload: options.maxResponseBytes,
      handshakeTimeout: options.timeoutMs,
      followRedirects: false,
      ...options.tls,
    })
    this.#socket.on('upgrade', (response: IncomingMessage) => this.#upgraded(response))
    this.#socket.on('unexpected-response', (request, response: IncomingMessage) => {
      response.resume()
      request.destroy()
      this.#fail(new StreamNotUsableError(`${options.node} answered the stream upgrade with HTTP ${response.statusCode ?? 0}`))
      options.onRefused(this, response.statusCode ?? 0)
    })
    this.#socket.on('open', () => this.#opened())
    this.#socket.on('message', (data: RawData, isBinary: boolean) => {
      try {
        this.#receive(data, isBinary)
      } catch (error) {
        // A bug here must not become an uncaught exception in the application using the client.
        this.#broken(new InvalidReplyError(options.node, `a stream message the client could not handle (${(error as Error).message})`))
      }
    })
    this.#socket.on('error', (error: NodeJS.ErrnoException) => {
      this.#fail(new NodeUnreachableError(`${options.node}: ${describeNetworkError(error)}`, false))
    })
    this.#socket.on('close', (code: number, reason: Buffer) => {
      const detail = reason.byteLength > 0 ? `: ${reason.toString('utf8')}` : ''
      this.#fail(new NodeUnreachableError(`${options.node}: stream connection closed (${code}${detail}) before the answer`, false))
    })
  }

  get closed(): boolean {
    return this.#state === 'closed'
  }

  /**
   * Sends `frame` (`[0, op, ...args]`; its requestId is filled in here) and resolves with the
   * answer frame `[requestId, status, ...]`, checked only for its envelope.
   */
  request(frame: unknown[]): Promise<unknown[]> {
    if (this.#state === 'closed') return Promise.reject(new NodeUnreachableError(`${this.#options.node}: stream connection closed`, false))
    const id = this.#nextId()
    frame[0] = id
    const bytes = this.#codec.encode(frame)
    return new Promise((resolve, reject) => {
      const pending: Pending = { id, bytes, deadlineMs: Date.now() + this.#options.timeoutMs, reused: this.#state === 'open', sent: false, resolve, reject }
      if (this.#pending.size === 0) this.#tcp?.ref()
      this.#pending.set(id, pending)
      this.#deadlineTimer ??= setTimeout(this.#expire, this.#options.timeoutMs)
      if (this.#state === 'open' && this.#waitingHead === this.#waiting.length && this.#sentUnanswered < this.#maxInFlight) this.#dispatch(pending, this.#sentUnanswered === 0 && this.#answersThisTurn <= 1)
      else this.#waiting.push(pending)
    })
  }

  /** Closes the connection; unanswered requests fail as if the node had gone away. */
  close(): void {
    if (this.#state === 'closed') return
    this.#fail(new NodeUnreachableError(`${this.#options.node}: the client closed the stream connection`, false))
    this.#socket.close(CLOSE_NORMAL)
    // A node that never finishes the close handshake must not keep the process alive.
    setTimeout(() => this.#socket.terminate(), this.#options.timeoutMs).unref()
  }

  #nextId(): number {
    // Ids wrap around; one still unanswered after 2^32 requests is skipped.
    do this.#lastId = this.#lastId >= MAX_REQUEST_ID ? 1 : this.#lastId + 1
    while (this.#pending.has(this.#lastId))
    return this.#lastId
  }

  #upgraded(response: IncomingMessage): void {
    this.#tcp = response.socket as Socket
    this.#maxInFlight = advertised(response.headers[MAX_IN_FLIGHT_HEADER], 1, MAX_ADVERTISED_IN_FLIGHT) ?? DEFAULT_MAX_IN_FLIGHT
    this.#maxMessageBytes = advertised(response.headers[MAX_MESSAGE_BYTES_HEADER], MIN_ADVERTISED_MESSAGE_BYTES, Number.MAX_SAFE_INTEGER) ?? DEFAULT_MAX_MESSAGE_BYTES
    this.#outbox.maxMessageBytes = this.#maxMessageBytes
  }

  #opened(): void {
    if (this.#state !== 'connecting') return
    this.#state = 'open'
    // An idle connection must not keep the process alive, as an idle keep-alive HTTP socket does not.
    if (this.#pending.size === 0) this.#tcp?.unref()
    this.#pump()
  }

  /** Moves waiting requests onto the wire while there is in-flight room. */
  #pump(): void {
    while (this.#state === 'open' && this.#waitingHead < this.#waiting.length && this.#sentUnanswered < this.#maxInFlight) {
      const next = this.#waiting[this.#waitingHead++] as Pending
      if (this.#pending.get(next.id) === next) this.#dispatch(next)
    }
    if (this.#waitingHead === this.#waiting.length) {
      this.#waiting = []
      this.#waitingHead = 0
    }
  }

  /**
   * @param alone nothing else is in flight on the connection and no burst of answers came in this
   *   turn: the request leaves at once rather than at the end of the turn (a request issued right
   *   after it in the same turn then waits for the turn's end as before)
   */
  #dispatch(pending: Pending, alone = false): void {
    if (pending.bytes.byteLength > this.#maxMessageBytes) {
      this.#settle(pending)
      pending.reject(new StreamNotUsableError(`a ${pending.bytes.byteLength}-byte request is larger than ${this.#options.node}'s stream message limit of ${this.#maxMessageBytes} bytes`))
      return
    }
    pending.sent = true
    this.#sentUnanswered++
    this.#outbox.push(pending.bytes, alone)
  }

  #settle(pending: Pending): void {
    this.#pending.delete(pending.id)
    if (pending.sent) this.#sentUnanswered--
    if (this.#pending.size === 0) {
      clearTimeout(this.#deadlineTimer)
      this.#deadlineTimer = undefined
      if (this.#state === 'open') this.#tcp?.unref()
    }
  }

  #receive(data: RawData, isBinary: boolean): void {
    if (this.#state !== 'open') return
    const node = this.#options.node
    if (!isBinary) return this.#broken(new InvalidReplyError(node, 'a text message on the stream connection'))
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
    let frames: unknown[]
    try {
      // A node has at most maxInFlight requests of ours at a time; late answers to requests that
      // timed out and refusals of excess ones can at most double that in one turn.
      frames = this.#codec.decodeMessage(bytes, 2 * this.#maxInFlight)
    } catch (error) {
      return this.#broken(new InvalidReplyError(node, `a stream message that is ${(error as Error).message}`))
    }
    for (const frame of frames) {
      if (!Array.isArray(frame) || frame.length < 3 || !Number.isSafeInteger(frame[0]) || !Number.isSafeInteger(frame[1])) {
        return this.#broken(new InvalidReplyError(node, 'a stream answer that is not [requestId, status, ...]'))
      }
      const pending = this.#pending.get(frame[0] as number)
      // An answer to a request that timed out meanwhile: nobody waits for it any more.
      if (pending === undefined || !pending.sent) continue
      if (this.#answersThisTurn++ === 0) setImmediate(this.#turnEnded)
      this.#settle(pending)
      pending.resolve(frame)
    }
    this.#pump()
  }

  readonly #turnEnded = (): void => {
    this.#answersThisTurn = 0
  }

  readonly #expire = (): void => {
    this.#deadlineTimer = undefined
    const nowMs = Date.now()
    for (const pending of this.#pending.values()) {
      if (pending.deadlineMs > nowMs) {
        this.#deadlineTimer = setTimeout(this.#expire, pending.deadlineMs - nowMs)
        break
      }
      this.#settle(pending)
      pending.reject(new NodeUnreachableError(`${this.#options.node}: no answer within ${this.#options.timeoutMs} ms`, false))
    }
    this.#pump()
  }

  /** The node broke the protocol: every request on this connection fails with that error. */
  #broken(error: InvalidReplyError): void {
    this.#fail(error)
    this.#socket.close(CLOSE_PROTOCOL_ERROR, 'malformed answer')
    setTimeout(() => this.#socket.terminate(), this.#options.timeoutMs).unref()
  }

  /** Fails every unanswered request with `error` (once) and marks the connection closed. */
  #fail(error: Error): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#outbox.close()
    clearTimeout(this.#deadlineTimer)
    this.#deadlineTimer = undefined
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    this.#waiting = []
    this.#waitingHead = 0
    this.#sentUnanswered = 0
    for (const request of pending) {
      // A lost connection that had carried requests before this one says nothing about the node:
      // the caller retries once on a fresh connection, as it does for a reused HTTP socket.
      const stale = error instanceof NodeUnreachableError && request.reused
      request.reject(stale ? new NodeUnreachableError(error.message, true) : error)
    }
    this.#options.onClosed(this)
  }
}

function advertised(header: string | string[] | undefined, min: number, max: number): number | undefined {
  if (typeof header !== 'string' || !/^[1-9][0-9]{0,15}$/.test(header)) return undefined
  return Math.min(max, Math.max(min, Number(header)))
}
