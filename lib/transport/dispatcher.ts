import type { Logger } from 'pino'
import { FrameTooLargeError, type FrameCodec } from '../codec/codec.js'
import type { FrameRegistry } from '../codec/frames.js'
import { MAX_ERROR_MESSAGE_CHARS, type ErrorBody } from '../codec/transport-frames.js'
import { RequestDeclinedError, type MessageHandler, type PeerIdentity, type PeerMessage } from './transport.js'

/**
 * Handlers by message type, and running them so that nothing a handler does (throw, reject,
 * answer wrongly) escapes into the transport's event handlers. Shared by both transports.
 */

export type Answer = { readonly reply: PeerMessage } | { readonly error: ErrorBody }

/** A handler failure a peer's input caused logs one warning per message type per this interval. */
const INPUT_FAILURE_LOG_INTERVAL_MS = 1000

export class Dispatcher {
  readonly #registry: FrameRegistry
  readonly #log: Logger
  readonly #handlers = new Map<string, MessageHandler>()
  /** Per message type: when an input failure was last logged as a warning, and how many since. */
  readonly #inputFailures = new Map<string, { atMs: number; suppressed: number }>()

  constructor(registry: FrameRegistry, log: Logger) {
    this.#registry = registry
    this.#log = log
  }

  handle(type: string, handler: MessageHandler): void {
    const kind = this.#registry.named(type).kind
    if (kind !== 'oneway' && kind !== 'request') throw new TypeError(`cannot handle ${type}: it is a ${kind} frame, not a oneway or request message`)
    if (this.#handlers.has(type)) throw new Error(`a handler for ${type} is already registered`)
    this.#handlers.set(type, handler)
  }

  /** Runs the handler of a one-way message; never throws or rejects. */
  async deliver(from: PeerIdentity, message: PeerMessage): Promise<void> {
    const handler = this.#handlers.get(message.type)
    if (handler === undefined) {
      this.#log.debug({ peer: from.peer, type: message.type }, 'no handler for one-way message; dropped')
      return
    }
    try {
      const answer = await handler(from, message)
      if (answer !== undefined) this.#log.error({ type: message.type, answer: answer.type }, 'handler of a one-way message returned an answer; ignored')
    } catch (error) {
      this.#handlerFailed(error, from, message.type, 'message handler failed')
    }
  }

  /** Runs the handler of a request and says what to send back; never throws or rejects. */
  async answer(from: PeerIdentity, message: PeerMessage): Promise<Answer> {
    const handler = this.#handlers.get(message.type)
    if (handler === undefined) return { error: { code: 'unhandled', message: `no handler for ${message.type}` } }
    let reply: PeerMessage | undefined
    try {
      reply = await handler(from, message)
    } catch (error) {
      if (error instanceof RequestDeclinedError) {
        this.#log.debug({ peer: from.peer, type: message.type, reason: error.message }, 'declined a request')
        return { error: { code: 'declined', message: truncate(error.message) } }
      }
      this.#handlerFailed(error, from, message.type, 'request handler failed')
      return { error: { code: 'handler', message: truncate(`${message.type} handler failed: ${error instanceof Error ? error.message : String(error)}`) } }
    }
    if (reply === undefined) return { error: { code: 'no-answer', message: `the ${message.type} handler answered nothing` } }
    if (this.#registry.byName(reply.type)?.kind !== 'reply') {
      this.#log.error({ type: message.type, answer: reply.type }, 'request handler answered with a type that is not a reply')
      return { error: { code: 'bad-answer', message: truncate(`the ${message.type} handler answered with ${reply.type}, which is not a reply type`) } }
    }
    return { reply }
  }

  /**
   * A bug (TypeError and kin, or a throw of a non-Error) logs its stack at error level. Anything
   * else a handler throws is about the peer's input (a clock beyond the skew bound, a record the
   * store refuses): its stack goes to debug, and one warning per type per second says how many
   * there were, so a peer sending 60,000 such frames cannot fill the log (issue 17).
   */
  #handlerFailed(error: unknown, from: PeerIdentity, type: string, what: string): void {
    if (isBug(error)) {
      this.#log.error({ err: error, peer: from.peer, type }, what)
      return
    }
    this.#log.debug({ err: error, peer: from.peer, type }, what)
    const now = Date.now()
    const last = this.#inputFailures.get(type)
    if (last !== undefined && now - last.atMs < INPUT_FAILURE_LOG_INTERVAL_MS) {
      last.suppressed++
      return
    }
    this.#inputFailures.set(type, { atMs: now, suppressed: 0 })
    const message = (error as Error).message
    this.#log.warn({ peer: from.peer, type, reason: message.slice(0, MAX_ERROR_MESSAGE_CHARS), ...(last !== undefined && last.suppressed > 0 ? { alsoFailedSinceLastLine: last.suppressed } : {}) }, what)
  }
}

function isBug(error: unknown): boolean {
  return !(error instanceof Error) || error instanceof TypeError || error instanceof RangeError
    || error instanceof ReferenceError || error instanceof SyntaxError || error.name === 'AssertionError'
}

/** The frame answering request `requestId`; a reply too large to send becomes an error answer. */
export function encodeAnswer(codec: FrameCodec, requestId: number, answer: Answer): Uint8Array {
  if ('error' in answer) return codec.encodeError(requestId, answer.error)
  try {
    return codec.encodeResponse(requestId, answer.reply)
  } catch (error) {
    if (!(error instanceof FrameTooLargeError)) throw error
    return codec.encodeError(requestId, { code: 'handler', message: truncate(error.message) })
  }
}

/** A programming error: send() takes one-way types, request() request types. */
export function assertKind(registry: FrameRegistry, type: string, kind: 'oneway' | 'request'): void {
  const actual = registry.named(type).kind
  if (actual !== kind) throw new TypeError(`${type} is a ${actual} frame; ${kind === 'oneway' ? 'send()' : 'request()'} takes ${kind} types`)
}

function truncate(text: string): string {
  return text.length <= MAX_ERROR_MESSAGE_CHARS ? text : text.slice(0, MAX_ERROR_MESSAGE_CHARS)
}
