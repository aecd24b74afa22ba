import type { IncomingMessage } from 'node:http'
import type { Logger } from 'pino'
import { WebSocket, type RawData } from 'ws'
import { MalformedFrameError, type FrameCodec, type Frame, type MalformedReason } from '../codec/codec.js'
import { PROTOCOL_VERSION, type ForeignHelloBody, type HelloBody, type ProofBody, type RefuseBody, type WelcomeBody } from '../codec/transport-frames.js'
import type { TransportCounters, LinkCloseReason } from './counters.js'
import { checkHello, checkProof, checkWelcome, computeProof, foreignProtocolRefusal, newNonce, type HandshakeRole } from './handshake.js'
import type { TransportLimits } from './limits.js'
import type { Clock } from '../runtime/clock.js'
import type { PeerIdentity } from './transport.js'
import { nameBindingRefusal, peerCertificateOf, type PeerCertificate } from './peer-tls.js'
import { PLAINTEXT_REFUSAL_HEADER } from './peer-server.js'
import { describeTlsFailure, isTlsHandshakeError, tlsFailureReason } from './tls-failure.js'

/**
 * One WebSocket to one peer: drives the handshake (docs/protocol.md "Handshake"), decodes and
 * validates every message, and hands established-link frames to the transport. Anything
 * malformed closes the link with a logged reason and a counter; no event handler lets an
 * exception escape, so peer input cannot crash the process.
 */

export interface LinkContext {
  readonly codec: FrameCodec
  readonly local: PeerIdentity
  readonly clusterName: string
  /** Empty: links are not authenticated. */
  readonly secret: string
  readonly limits: TransportLimits
  readonly log: Logger
  readonly counters: TransportCounters
  /** Keepalive bookkeeping reads time from it. */
  readonly clock: Clock
  /**
   * Links run over TLS (tls.peer on): the peer's certificate must name the node its hello or
   * welcome claims (docs/protocol.md "Name binding").
   */
  readonly tls: boolean
}

export interface LinkEvents {
  /**
   * May this link go on? Asked of an acceptor when a valid hello arrives (authenticated false:
   * the dialer has not proven the secret yet) and of both sides just before the link opens
   * (authenticated true). A refusal is sent to the peer and the link closed.
   */
  admit(link: PeerLink, authenticated: boolean): RefuseBody | undefined
  opened(link: PeerLink): void
  frame(link: PeerLink, frame: Frame): void
  /** Exactly once per link, synchronously inside close(). */
  closed(link: PeerLink, reason: LinkCloseReason): void
}

export type LinkState = 'handshaking' | 'open' | 'closed'

/** WebSocket close codes; 4000-4999 are for applications (RFC 6455 §7.4.2). */
const CLOSE_CODES: Record<LinkCloseReason, number> = {
  remote: 1000,
  shutdown: 1001,
  malformed: 1002,
  refused: 1008,
  replaced: 4000,
  handshake_timeout: 4001,
  keepalive: 4002,
  internal: 1011,
}
/** A close frame's reason text is at most 123 bytes. */
const MAX_CLOSE_REASON_CHARS = 100

export class PeerLink {
  state: LinkState = 'handshaking'
  /** The peer as its hello or welcome introduced it; set once the introduction checked out. */
  remote: PeerIdentity | undefined
  /** Why the handshake was refused, by either side, if it was. */
  refusal: RefuseBody | undefined
  readonly #socket: WebSocket
  readonly #context: LinkContext
  readonly #events: LinkEvents
  /** Which frame the handshake waits for next. */
  #awaiting: 'open' | 'hello' | 'welcome' | 'proof' | 'nothing'
  #dialerNonce: Uint8Array | undefined
  #acceptorNonce: Uint8Array | undefined
  #lastHeardAtMs: number
  #handshakeTimer: NodeJS.Timeout | undefined
  #keepaliveTimer: NodeJS.Timeout | undefined
  #certificate: PeerCertificate | undefined

  /** Resolves once the socket is closed (close() cuts it after closeTimeoutMs at the latest). */
  readonly socketClosed: Promise<void>

  /**
   * @param endpoint for logs until the peer introduces itself: the address dialed, or the
   *   remote socket address of an accepted connection
   * @param certificate an acceptor's verified client certificate (TLS); a dialer learns the
   *   acceptor's from the upgrade response
   */
  constructor(socket: WebSocket, readonly role: HandshakeRole, readonly endpoint: string, context: LinkContext, events: LinkEvents, certificate?: PeerCertificate) {
    this.#socket = socket
    this.#certificate = certificate
    this.#context = context
    this.#lastHeardAtMs = context.clock.nowMs()
    this.#events = events
    this.#awaiting = role === 'dialer' ? 'open' : 'hello'
    this.socketClosed = new Promise(resolve => socket.once('close', () => resolve()))
    this.#handshakeTimer = setTimeout(this.#guard(() => {
      if (this.state === 'handshaking') this.close('handshake_timeout', `no complete handshake within ${context.limits.handshakeTimeoutMs} ms`)
    }), context.limits.handshakeTimeoutMs).unref()
    socket.on('upgrade', this.#guard((response: IncomingMessage) => { this.#certificate = peerCertificateOf(response.socket) }))
    socket.on('unexpected-response', this.#guard((_request: unknown, response: IncomingMessage) => this.#unexpectedResponse(response)))
    socket.on('open', this.#guard(() => this.#sendHello()))
    socket.on('message', this.#guard((data: RawData, isBinary: boolean) => this.#receive(data, isBinary)))
    socket.on('pong', this.#guard(() => { this.#lastHeardAtMs = this.#context.clock.nowMs() }))
    socket.on('error', this.#guard((error: Error & { code?: string }) => this.#socketError(error)))
    socket.on('close', this.#guard(() => this.close('remote', 'the connection closed')))
  }

  /** Who the peer is, for logs: its introduction if known, else the endpoint. */
  get peerLabel(): string {
    return this.remote?.peer ?? this.endpoint
  }

  /** The peer's verified certificate on a TLS link. */
  get certificate(): PeerCertificate | undefined {
    return this.#certificate
  }

  /** Bytes written to the socket and not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.#socket.bufferedAmount
  }

  /** Sends one message (one or more encoded frames) on an open link. */
  write(message: Uint8Array): void {
    if (this.state !== 'open') throw new Error(`write on a ${this.state} link`)
    this.#socket.send(message, { binary: true })
  }

  /** Tells the peer why and closes the link; counted and logged as a local refusal. */
  refuse(refusal: RefuseBody): void {
    if (this.state === 'closed') return
    this.refusal = refusal
    this.#logRefusal('local', refusal)
    this.#sendHandshake('refuse', refusal)
    this.close('refused', refusal.reason)
  }

  /** Closes the link once: the transport hears of it synchronously, the socket follows. */
  close(reason: LinkCloseReason, detail: string): void {
    if (this.state === 'closed') return
    const wasOpen = this.state === 'open'
    this.state = 'closed'
    this.#awaiting = 'nothing'
    clearTimeout(this.#handshakeTimer)
    clearInterval(this.#keepaliveTimer)
    this.#context.log.debug({ peer: this.peerLabel, reason, detail, wasOpen }, 'peer link closed')
    this.#context.counters.linkClosed(reason)
    try {
      this.#events.closed(this, reason)
    } finally {
      this.#closeSocket(CLOSE_CODES[reason], detail)
    }
  }

  #closeSocket(code: number, detail: string): void {
    const socket = this.#socket
    if (socket.readyState === WebSocket.CLOSED) return
    if (socket.readyState !== WebSocket.OPEN) {
      socket.terminate()
      return
    }
    // ws throws on a reason over 123 bytes; ASCII keeps characters and bytes equal.
    socket.close(code, detail.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_CLOSE_REASON_CHARS))
    // A peer that never answers the close frame must not hold the socket open.
    setTimeout(() => socket.terminate(), this.#context.limits.closeTimeoutMs).unref()
  }

  #isClosed(): boolean {
    return this.state === 'closed'
  }

  #sendHello(): void {
    if (this.#awaiting !== 'open') return
    const { local, clusterName } = this.#context
    this.#dialerNonce = newNonce()
    this.#awaiting = 'welcome'
    this.#sendHandshake('hello', {
      protocol: PROTOCOL_VERSION, cluster: clusterName, id: local.id, name: local.name, peer: local.peer, api: local.api, nonce: this.#dialerNonce,
    } satisfies HelloBody)
  }

  #receive(data: RawData, isBinary: boolean): void {
    if (this.state === 'closed') return
    this.#lastHeardAtMs = this.#context.clock.nowMs()
    if (!isBinary) return this.#malformed('undecodable', 'a text message; peers speak binary MessagePack')
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
    const limit = this.state === 'open' ? this.#context.limits.maxFrameBytes : this.#context.limits.maxHandshakeMessageBytes
    if (bytes.byteLength > limit) return this.#malformed('oversized', `a ${bytes.byteLength}-byte message, more than ${limit} allowed ${this.state === 'open' ? '' : 'before the handshake completes'}`)
    let frames: Frame[]
    try {
      frames = this.#context.codec.decodeMessage(bytes)
    } catch (error) {
      if (error instanceof MalformedFrameError) return this.#malformed(error.reason, error.message)
      throw error
    }
    for (const frame of frames) {
      // A frame handler may have closed the link; the frames after it are not for anyone.
      if (this.#isClosed()) return
      if (frame.type.kind === 'handshake') this.#handshakeFrame(frame)
      else if (this.state !== 'open') return this.#malformed('bad-frame', `${frame.type.name} before the handshake completed`)
      else this.#events.frame(this, frame)
    }
  }

  #handshakeFrame(frame: Frame): void {
    const name = frame.type.name
    if (name === 'refuse') {
      const refusal = frame.body as RefuseBody
      this.refusal = refusal
      this.#logRefusal('remote', refusal)
      return this.close('refused', `refused by the peer: ${refusal.reason}`)
    }
    if (name !== this.#awaiting) return this.#malformed('bad-frame', `${name} while ${this.state === 'open' ? 'the link is established' : `waiting for ${this.#awaiting}`}`)
    if (name === 'hello') return this.#onHello(frame.body as HelloBody | ForeignHelloBody)
    if (name === 'welcome') return this.#onWelcome(frame.body as WelcomeBody)
    if (name === 'proof') return this.#onProof(frame.body as ProofBody)
  }

  /** Acceptor: a hello arrived. */
  #onHello(hello: HelloBody | ForeignHelloBody): void {
    const { local, clusterName, secret } = this.#context
    if ('foreign' in hello) return this.refuse(foreignProtocolRefusal(hello))
    const refusal = checkHello(hello, { clusterName, localId: local.id }) ?? this.#nameBinding(hello, 'dialer')
    if (refusal !== undefined) return this.refuse(refusal)
    this.remote = { id: hello.id, name: hello.name, peer: hello.peer, api: hello.api, ...this.#certified() }
    this.#dialerNonce = hello.nonce
    const admission = this.#events.admit(this, false)
    if (admission !== undefined) return this.refuse(admission)
    this.#acceptorNonce = newNonce()
    this.#awaiting = 'proof'
    this.#sendHandshake('welcome', {
      protocol: PROTOCOL_VERSION, cluster: clusterName, id: local.id, name: local.name, peer: local.peer, api: local.api,
      nonce: this.#acceptorNonce, proof: computeProof(secret, 'acceptor', hello.nonce, this.#acceptorNonce, local.id),
    } satisfies WelcomeBody)
  }

  /** Dialer: the acceptor answered; check it, prove ourselves, open. */
  #onWelcome(welcome: WelcomeBody): void {
    const { local, clusterName, secret } = this.#context
    const dialerNonce = this.#dialerNonce as Uint8Array
    const refusal = checkWelcome(welcome, dialerNonce, secret, { clusterName, localId: local.id }) ?? this.#nameBinding(welcome, 'acceptor')
    this.remote = { id: welcome.id, name: welcome.name, peer: welcome.peer, api: welcome.api, ...(refusal === undefined ? this.#certified() : {}) }
    if (refusal !== undefined) return this.refuse(refusal)
    const admission = this.#events.admit(this, true)
    if (admission !== undefined) return this.refuse(admission)
    this.#sendHandshake('proof', { proof: computeProof(secret, 'dialer', dialerNonce, welcome.nonce, local.id) } satisfies ProofBody)
    this.#open()
  }

  /** Acceptor: the dialer proved (or not) the secret. */
  #onProof(body: ProofBody): void {
    const remote = this.remote as PeerIdentity
    const refusal = checkProof(this.#context.secret, 'dialer', this.#dialerNonce as Uint8Array, this.#acceptorNonce as Uint8Array, remote.id, body.proof) ??
      this.#events.admit(this, true)
    if (refusal !== undefined) return this.refuse(refusal)
    this.#open()
  }

  /** Marks the introduction's name as certificate-bound on a TLS link (checked before it is used). */
  #certified(): { nameCertified?: true } {
    return this.#context.tls ? { nameCertified: true } : {}
  }

  /** On a TLS link: the refusal when the peer's certificate does not name the node it claims. */
  #nameBinding(claimed: { readonly name: string; readonly peer: string }, role: HandshakeRole): RefuseBody | undefined {
    if (!this.#context.tls) return undefined
    const reason = nameBindingRefusal(this.#certificate, claimed, role)
    if (reason === undefined) return undefined
    this.#context.counters.tlsFailure(this.#certificate === undefined ? 'no_certificate' : 'bad_name')
    return { code: 'identity', reason }
  }

  #open(): void {
    this.state = 'open'
    this.#awaiting = 'nothing'
    clearTimeout(this.#handshakeTimer)
    const intervalMs = this.#context.limits.keepaliveIntervalMs
    this.#keepaliveTimer = setInterval(this.#guard(() => {
      if (this.#context.clock.nowMs() - this.#lastHeardAtMs > 2 * intervalMs) return this.close('keepalive', `silent for more than ${2 * intervalMs} ms`)
      this.#socket.ping()
    }), intervalMs).unref()
    this.#context.log.info({ peer: this.peerLabel, id: this.remote?.id, name: this.remote?.name, role: this.role, serial: this.#certificate?.serial }, 'peer link established')
    this.#context.counters.linkOpened(this.role === 'dialer' ? 'outbound' : 'inbound')
    this.#events.opened(this)
  }

  #sendHandshake(type: 'hello' | 'welcome' | 'proof' | 'refuse', body: unknown): void {
    if (this.#socket.readyState !== WebSocket.OPEN) return
    this.#socket.send(this.#context.codec.encode(type, 0, body), { binary: true })
  }

  #malformed(reason: MalformedReason, detail: string): void {
    this.#context.log.warn({ peer: this.peerLabel, reason, detail }, 'malformed message from peer; closing the link')
    this.#context.counters.malformed(reason)
    this.close('malformed', detail)
  }

  #socketError(error: Error & { code?: string }): void {
    // ws reports a broken WebSocket framing or an over-long message with a WS_ERR_* code and
    // closes the socket itself; anything else is the network.
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return this.#malformed('oversized', error.message)
    if (error.code?.startsWith('WS_ERR_') === true) return this.#malformed('undecodable', error.message)
    if (this.#context.tls && this.#awaiting === 'open') {
      // Our dial failed before the WebSocket upgrade, in the TLS handshake (not in reaching the host).
      if (isTlsHandshakeError(error)) {
        const reason = tlsFailureReason(error)
        this.#context.counters.tlsFailure(reason)
        this.#context.log.warn({ peer: this.peerLabel, reason, code: error.code, detail: error.message }, `TLS handshake with the peer failed: ${describeTlsFailure(reason)}`)
        return this.close('remote', error.message)
      }
    }
    this.#context.log.debug({ peer: this.peerLabel, err: error }, 'peer link error')
    this.close('remote', error.message)
  }

  /** Dialer: the peer port answered the upgrade with an HTTP status instead of switching protocols. */
  #unexpectedResponse(response: IncomingMessage): void {
    const why = response.headers[PLAINTEXT_REFUSAL_HEADER]
    if (typeof why === 'string') {
      this.#context.counters.tlsFailure('plaintext')
      this.#context.log.warn({ peer: this.peerLabel, status: response.statusCode, reason: 'plaintext' }, `the peer refused a plaintext link: ${why}`)
    } else {
      this.#context.log.debug({ peer: this.peerLabel, status: response.statusCode }, 'the peer port answered the upgrade with an HTTP status')
    }
    response.resume()
    this.close('remote', `the peer answered the upgrade with HTTP ${response.statusCode ?? '?'}`)
  }

  #logRefusal(by: 'local' | 'remote', refusal: RefuseBody): void {
    const fields = { peer: this.peerLabel, by, code: refusal.code, reason: refusal.reason }
    // Losing a simultaneous dial is routine; everything else means two nodes disagree.
    if (refusal.code === 'duplicate') this.#context.log.debug(fields, 'duplicate peer link refused')
    else if (by === 'local') this.#context.log.warn(fields, `refused the peer link: ${refusal.reason}`)
    else this.#context.log.warn(fields, `the peer refused the link: ${refusal.reason}`)
    this.#context.counters.refused(by, refusal.code)
  }

  /** Wraps an event handler: an exception becomes a logged, closed link, never a crash. */
  #guard<A extends unknown[]>(handler: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        handler(...args)
      } catch (error) {
        this.#context.log.error({ peer: this.peerLabel, err: error }, 'peer link handler failed; closing the link')
        try {
          this.close('internal', 'internal error')
        } catch (closeError) {
          this.#context.log.error({ err: closeError }, 'closing a failed peer link failed')
        }
      }
    }
  }
}
