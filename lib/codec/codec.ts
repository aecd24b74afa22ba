import { Packr } from 'msgpackr'
import type { PeerMessage } from '../transport/transport.js'
import { ERROR_FRAME, RESPONSE_FRAME, type FrameRegistry, type FrameType } from './frames.js'
import type { ErrorBody } from './transport-frames.js'

/**
 * Frames on the wire: a frame is the MessagePack array `[typeCode, requestId, body]`; a
 * WebSocket message is one or more encoded frames back to back (a MessagePack sequence, read
 * with unpackMultiple). Concatenation rather than an outer array lets a sender append frames
 * already encoded without re-encoding them, and a frame's size is known when it is queued.
 */

export interface CodecLimits {
  /** Largest encoded frame, and largest message: frames are batched up to this total. */
  readonly maxFrameBytes: number
  /** Most frames one message may carry. */
  readonly maxFramesPerMessage: number
}

/** A decoded, fully validated frame. For `response` the body is the reply as a PeerMessage. */
export interface Frame {
  readonly type: FrameType
  /** 0 for handshake and one-way frames; the request's id for requests and their answers. */
  readonly requestId: number
  readonly body: unknown
  /** Encoded size of this frame within its message (for per-type byte counters). */
  readonly bytes: number
}

export const MALFORMED_REASONS = ['empty', 'oversized', 'undecodable', 'too-many-frames', 'bad-frame', 'unknown-type', 'bad-body'] as const
/** Label for metrics: why a message was rejected. */
export type MalformedReason = (typeof MALFORMED_REASONS)[number]

export class MalformedFrameError extends Error {
  constructor(readonly reason: MalformedReason, detail: string) {
    super(detail)
    this.name = 'MalformedFrameError'
  }
}

/** Thrown when encoding produced a frame above maxFrameBytes; the caller's message is too big. */
export class FrameTooLargeError extends Error {
  constructor(readonly frameBytes: number, readonly maxFrameBytes: number, type: string) {
    super(`a ${type} frame encodes to ${frameBytes} bytes, more than maxFrameBytes ${maxFrameBytes}`)
    this.name = 'FrameTooLargeError'
  }
}

export class FrameCodec {
  // useRecords: false keeps maps as plain MessagePack maps any decoder reads; int64AsType makes
  // a 64-bit integer from a peer a number (validators then reject unsafe ones), never a BigInt.
  readonly #packr = new Packr({ useRecords: false, int64AsType: 'number' })

  constructor(readonly registry: FrameRegistry, readonly limits: CodecLimits) {}

  /** Encodes one frame. Unknown type or misplaced requestId is a programming error (TypeError). */
  encode(typeName: string, requestId: number, body: unknown): Uint8Array {
    const type = this.registry.named(typeName)
    if (type.kind === 'reply') throw new TypeError(`${typeName} is a reply; send it as the answer of a request handler`)
    if (!Number.isSafeInteger(requestId) || requestId < 0 || carriesRequestId(type) !== (requestId > 0)) {
      throw new TypeError(`${type.kind} frame ${typeName} cannot carry requestId ${requestId}`)
    }
    return this.#pack(typeName, [type.code, requestId, type.encode === undefined ? body : type.encode(body)])
  }

  /** A `response` frame answering request `requestId` with `reply` (a reply-kind message). */
  encodeResponse(requestId: number, reply: PeerMessage): Uint8Array {
    const type = this.registry.named(reply.type)
    if (type.kind !== 'reply') throw new TypeError(`${reply.type} is not a reply type and cannot answer a request`)
    return this.#pack(reply.type, [this.registry.named(RESPONSE_FRAME).code, requestId, [type.code, type.encode === undefined ? reply.body : type.encode(reply.body)]])
  }

  encodeError(requestId: number, error: ErrorBody): Uint8Array {
    return this.encode(ERROR_FRAME, requestId, error)
  }

  /** Several encoded frames as one message body. */
  joinMessage(frames: readonly Uint8Array[]): Uint8Array {
    return frames.length === 1 && frames[0] !== undefined ? frames[0] : Buffer.concat(frames)
  }

  /** Decodes and validates every frame of one message; throws MalformedFrameError. */
  decodeMessage(message: Uint8Array): Frame[] {
    if (message.byteLength === 0) throw new MalformedFrameError('empty', 'empty message')
    if (message.byteLength > this.limits.maxFrameBytes) {
      throw new MalformedFrameError('oversized', `message of ${message.byteLength} bytes exceeds maxFrameBytes ${this.limits.maxFrameBytes}`)
    }
    const values: unknown[] = []
    const sizes: number[] = []
    try {
      this.#packr.unpackMultiple(message, (value: unknown, start?: number, end?: number) => {
        values.push(value)
        sizes.push((end ?? 0) - (start ?? 0))
        // Stop decoding as soon as the bound is crossed rather than materialize the rest.
        return values.length <= this.limits.maxFramesPerMessage
      })
    } catch (error) {
      throw new MalformedFrameError('undecodable', `not MessagePack: ${oneLine(error)}`)
    }
    if (values.length > this.limits.maxFramesPerMessage) {
      throw new MalformedFrameError('too-many-frames', `message carries more than ${this.limits.maxFramesPerMessage} frames`)
    }
    return values.map((value, i) => this.#decodeFrame(value, sizes[i] ?? 0))
  }

  #pack(typeName: string, frame: unknown[]): Uint8Array {
    const bytes = this.#packr.pack(frame)
    if (bytes.byteLength > this.limits.maxFrameBytes) throw new FrameTooLargeError(bytes.byteLength, this.limits.maxFrameBytes, typeName)
    return bytes
  }

  #decodeFrame(value: unknown, bytes: number): Frame {
    if (!Array.isArray(value) || value.length !== 3) throw new MalformedFrameError('bad-frame', 'frame is not an array of 3 entries')
    const [code, requestId, body] = value as [unknown, unknown, unknown]
    if (typeof code !== 'number' || !Number.isSafeInteger(requestId) || (requestId as number) < 0) {
      throw new MalformedFrameError('bad-frame', 'frame type code or requestId is not a non-negative integer')
    }
    const type = this.registry.byCode(code)
    if (type === undefined) throw new MalformedFrameError('unknown-type', `unknown frame type code ${code}`)
    const id = requestId as number
    if (type.kind === 'reply') throw new MalformedFrameError('bad-frame', `reply ${type.name} outside a response`)
    if (carriesRequestId(type) !== (id > 0)) {
      throw new MalformedFrameError('bad-frame', `${type.kind} frame ${type.name} with requestId ${id}`)
    }
    if (type.name === RESPONSE_FRAME) return { type, requestId: id, body: this.#decodeReply(body), bytes }
    return { type, requestId: id, body: validateBody(type, body), bytes }
  }

  #decodeReply(value: unknown): PeerMessage {
    if (!Array.isArray(value) || value.length !== 2) throw new MalformedFrameError('bad-body', 'response body is not [replyType, body]')
    const [code, body] = value as [unknown, unknown]
    const type = typeof code === 'number' ? this.registry.byCode(code) : undefined
    // Never String(code): a hostile map with a non-function toString would throw a TypeError here.
    if (type === undefined) throw new MalformedFrameError('unknown-type', `response carries unknown type code ${typeof code === 'number' ? code : `of type ${code === null ? 'null' : typeof code}`}`)
    if (type.kind !== 'reply') throw new MalformedFrameError('bad-frame', `response carries ${type.name}, which is not a reply type`)
    return { type: type.name, body: validateBody(type, body) }
  }
}

/** Requests and their answers carry the request's id; handshake and one-way frames carry 0. */
function carriesRequestId(type: FrameType): boolean {
  return type.kind === 'request' || type.kind === 'envelope'
}

function validateBody(type: FrameType, body: unknown): unknown {
  try {
    return type.validate(body)
  } catch (error) {
    throw new MalformedFrameError('bad-body', `bad ${type.name} body: ${oneLine(error)}`)
  }
}

const MAX_DETAIL_CHARS = 200

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  return text.replace(/\s+/g, ' ').slice(0, MAX_DETAIL_CHARS)
}
