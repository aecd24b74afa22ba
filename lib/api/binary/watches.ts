import { formatVersion } from '../../clock/version.js'
import { BadRequestError, UnavailableError } from '../../errors.js'
import type { WatchEvent } from '../../watch/event.js'
import type { CutReason, WatchSink } from '../../watch/watcher.js'
import { parseSince, type WatchPort } from '../watch-route.js'
import { ProtocolViolationError } from './requests.js'

/**
 * The watches of one stream connection (docs/client-protocol.md "Watches"): `[id, 7, prefix,
 * since?, credit]` opens one, `[0, 8, id, n]` grants it n more events, `[id2, 9, id]` ends it.
 * Events go out as `[id, 0, [[key, value, version], …]]`, never more than the credit granted and
 * only while the connection has less than WATCH_SOCKET_HIGH_WATER_BYTES of frames unwritten; the
 * rest waits in the watcher's bounded buffer (lib/watch/watcher.ts). `[id, 1, {reason}]` ends a
 * watch from the server's side.
 */

export { OP_UNWATCH, OP_WATCH } from './protocol.js'
export const OP_CREDIT = 8
/** Status of an events frame and of a watch's end frame (not HTTP statuses: they never end a request). */
export const WATCH_EVENTS = 0
export const WATCH_END = 1
/** Most credit one frame grants, and most a watch may hold. */
export const MAX_WATCH_CREDIT = 2 ** 30
/** Frames of watch events a connection may have unwritten before its watches wait for the socket. */
export const WATCH_SOCKET_HIGH_WATER_BYTES = 1024 * 1024

/** What a connection offers its watches. */
export interface WatchFrameHost {
  /** Queues a frame for the socket; its bytes count in the connection's budget until written. */
  sendFrame(frame: unknown[]): void
  /** Bytes of frames queued or handed to the socket and not yet written. */
  unwrittenBytes(): number
}

interface StreamWatch {
  readonly watcher: { close(): void; resume(): void }
  readonly sink: StreamWatchSink
}

export class ConnectionWatches {
  readonly #port: WatchPort | undefined
  readonly #host: WatchFrameHost
  readonly #maxWatches: number
  readonly #maxPrefixBytes: number
  readonly #watches = new Map<number, StreamWatch>()

  constructor(port: WatchPort | undefined, host: WatchFrameHost, limits: { readonly maxWatches: number; readonly maxPrefixBytes: number }) {
    this.#port = port
    this.#host = host
    this.#maxWatches = limits.maxWatches
    this.#maxPrefixBytes = limits.maxPrefixBytes
  }

  get size(): number {
    return this.#watches.size
  }

  has(id: number): boolean {
    return this.#watches.has(id)
  }

  /** `[id, 7, prefix, since?, credit]`; throws a HearsayError to answer (the id is then free again). */
  open(id: number, frame: readonly unknown[]): void {
    if (frame.length < 5 || frame.length > 5) throw new BadRequestError(`a frame of ${frame.length} entries: a watch is [id, 7, prefix, since, credit] (since may be nil)`)
    const [, , prefix, since, credit] = frame
    if (typeof prefix !== 'string') throw new BadRequestError('prefix must be a string', { param: 'prefix' })
    if (Buffer.byteLength(prefix) > this.#maxPrefixBytes) throw new BadRequestError(`prefix is longer than ${this.#maxPrefixBytes} bytes of UTF-8`, { param: 'prefix' })
    if (since !== undefined && since !== null && typeof since !== 'string') throw new BadRequestError('since must be a version string or nil', { param: 'since' })
    const initialCredit = readCredit(credit, 0)
    if (this.#port === undefined) throw new UnavailableError('this node does not serve watches')
    if (this.#watches.size >= this.#maxWatches) throw new UnavailableError(`this connection has ${this.#maxWatches} watches open, its limit; open another connection`, { maxWatches: this.#maxWatches })
    const sink = new StreamWatchSink(id, this.#host, initialCredit, () => this.#watches.delete(id))
    const request = typeof since === 'string' && since !== '' ? { prefix, since: parseSince(since, 'since') } : { prefix }
    // Throws 410 / 503 before anything was sent for the id.
    const watcher = this.#port.open(request, sink)
    this.#watches.set(id, { watcher, sink })
    this.#host.sendFrame([id, 200])
  }

  /** `[0, 8, id, n]`; credit for a watch that is gone is ignored (it may have ended meanwhile). */
  credit(frame: readonly unknown[]): void {
    if (frame.length !== 4 || !Number.isSafeInteger(frame[2])) throw new ProtocolViolationError('a credit frame is [0, 8, watchId, n]')
    const credit = readCreditStrict(frame[3])
    const watch = this.#watches.get(frame[2] as number)
    if (watch === undefined) return
    watch.sink.grant(credit)
    watch.watcher.resume()
  }

  /** `[id2, 7, id]`: ends watch `id`; true when there was one. */
  unwatch(frame: readonly unknown[]): boolean {
    if (frame.length !== 3 || !Number.isSafeInteger(frame[2])) throw new BadRequestError('an unwatch is [id, 9, watchId]')
    const id = frame[2] as number
    const watch = this.#watches.get(id)
    if (watch === undefined) return false
    this.#watches.delete(id)
    watch.watcher.close()
    watch.sink.end({ reason: 'unwatched' })
    return true
  }

  /** Frames were written: watches that waited for the socket may go on. */
  drained(): void {
    if (this.#host.unwrittenBytes() >= WATCH_SOCKET_HIGH_WATER_BYTES) return
    for (const watch of this.#watches.values()) if (watch.sink.waitingForSocket) watch.watcher.resume()
  }

  /** The connection is gone: its watches end without a frame. */
  closeAll(): void {
    for (const watch of this.#watches.values()) {
      watch.sink.closed = true
      watch.watcher.close()
    }
    this.#watches.clear()
  }
}

class StreamWatchSink implements WatchSink {
  closed = false
  /** True when the sink last refused events for want of socket space (not of credit). */
  waitingForSocket = false
  #credit: number

  constructor(private readonly id: number, private readonly host: WatchFrameHost, credit: number, private readonly onEnd: () => void) {
    this.#credit = credit
  }

  grant(credit: number): void {
    this.#credit = Math.min(MAX_WATCH_CREDIT, this.#credit + credit)
  }

  capacity(): number {
    if (this.closed || this.#credit === 0) return 0
    this.waitingForSocket = this.host.unwrittenBytes() >= WATCH_SOCKET_HIGH_WATER_BYTES
    return this.waitingForSocket ? 0 : this.#credit
  }

  write(events: readonly WatchEvent[]): void {
    this.#credit -= events.length
    this.host.sendFrame([this.id, WATCH_EVENTS, events.map((event) => [event.key, event.value, formatVersion(event.version)])])
  }

  cut(reason: CutReason, detail: Readonly<Record<string, unknown>>): void {
    this.end({ ...detail, reason })
  }

  end(body: Readonly<Record<string, unknown>>): void {
    if (this.closed) return
    this.closed = true
    this.onEnd()
    this.host.sendFrame([this.id, WATCH_END, body])
  }
}

function readCredit(value: unknown, fallback: number): number {
  if (value === undefined || value === null) return fallback
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_WATCH_CREDIT) return value
  throw new BadRequestError(`credit must be an integer from 0 to ${MAX_WATCH_CREDIT}`, { param: 'credit' })
}

function readCreditStrict(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_WATCH_CREDIT) return value
  throw new ProtocolViolationError(`a credit frame grants an integer from 1 to ${MAX_WATCH_CREDIT}`)
}
