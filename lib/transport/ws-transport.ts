import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocket } from 'ws'
import { FrameCodec, FrameTooLargeError, type Frame } from '../codec/codec.js'
import { ERROR_FRAME, RESPONSE_FRAME, frameRegistry, type FrameRegistry } from '../codec/frames.js'
import type { ErrorBody, RefuseBody, RefuseCode } from '../codec/transport-frames.js'
import { formatHostPort, parseHostPort } from '../config/address.js'
import type { Clock, TimerHandle } from '../runtime/clock.js'
import type { Random } from '../runtime/random.js'
import { backoffDelayMs } from './backoff.js'
import { NO_COUNTERS, type TransportCounters } from './counters.js'
import { Dispatcher, assertKind, encodeAnswer } from './dispatcher.js'
import { DEFAULT_TRANSPORT_LIMITS, type TransportLimits } from './limits.js'
import { PeerLink, type LinkContext, type LinkEvents } from './link.js'
import { PendingRequests } from './pending-requests.js'
import { listenPeerServer, type PeerServer } from './peer-server.js'
import { dialOptions, peerCertificateOf, type PeerTlsOptions } from './peer-tls.js'
import { SendQueue } from './send-queue.js'
import { TransportError, type MessageHandler, type PeerAddress, type PeerIdentity, type PeerMessage, type Transport } from './transport.js'

/**
 * The daemon's transport: one persistent WebSocket link per peer, MessagePack frames batched
 * per event-loop turn, request/response by requestId, reconnect with backoff, bounded queues.
 * docs/protocol.md describes the wire; this file decides which link carries a peer's traffic.
 *
 * Traffic for a peer is filed under a channel keyed by the peer's advertised address. A channel
 * holds at most one link in `link` (dialing, handshaking or open) and at most one inbound link
 * whose hello was admitted but whose proof has not arrived (`incoming`). When two links to the
 * same peer compete (both nodes dialed at once), the one dialed by the lower node id wins, on
 * both sides alike (see `wins`).
 */

export interface WsTransportOptions {
  readonly bindHost: string
  /** 0 picks a free port (tests); start() returns the bound one. */
  readonly bindPort: number
  readonly local: PeerIdentity
  readonly clusterName: string
  /** cluster.secret; empty or undefined: links are not authenticated. */
  readonly secret?: string
  readonly log: Logger
  /** Request deadlines, queue expiry and reconnect timers: systemClock in the daemon. */
  readonly clock: Clock
  /** Reconnect jitter. */
  readonly random: Random
  readonly limits?: Partial<TransportLimits>
  readonly counters?: TransportCounters
  /** A link to the peer opened (after having none). */
  readonly onPeerConnected?: (peer: PeerIdentity) => void
  /** The last open link to the peer closed: a hint, never a verdict on the peer's health. */
  readonly onPeerDisconnected?: (peer: PeerIdentity) => void
  /** Frame types; defaults to every type in lib/codec/frames.ts. */
  readonly frames?: FrameRegistry
  /** tls.peer on: links are wss:// with mutual TLS and name binding, nothing else is accepted or dialed. */
  readonly tls?: PeerTlsOptions
}

export interface LinkStatus extends PeerIdentity {
  /** outbound: this node dialed the link. */
  readonly direction: 'inbound' | 'outbound'
  /** Serial of the peer's certificate on a TLS link (upper-case hex). */
  readonly serial?: string
}

/** Refusals that retrying will not cure; the others (duplicate, busy) are transient. */
const FATAL_REFUSALS: ReadonlySet<RefuseCode> = new Set(['protocol', 'cluster', 'auth', 'identity'])

interface Channel {
  /** The peer's advertised address (or, until its welcome, the address dialed). */
  address: PeerAddress
  link: PeerLink | undefined
  incoming: PeerLink | undefined
  readonly queue: SendQueue
  /** connect() asked for a link whether or not messages wait. */
  wanted: boolean
  /** Failed dials since the last open link, for the backoff. */
  attempt: number
  reconnectTimer: TimerHandle | undefined
  flushScheduled: boolean
  /** Requests from the peer being handled here, not answered yet. */
  unanswered: number
  /** onPeerConnected was reported and onPeerDisconnected not yet. */
  connectedPeer: PeerIdentity | undefined
}

export class WsTransport implements Transport {
  readonly local: PeerIdentity
  readonly #options: WsTransportOptions
  readonly #limits: TransportLimits
  readonly #log: Logger
  readonly #counters: TransportCounters
  readonly #codec: FrameCodec
  readonly #dispatcher: Dispatcher
  readonly #pending: PendingRequests
  readonly #context: LinkContext
  readonly #events: LinkEvents
  readonly #channels = new Map<PeerAddress, Channel>()
  /** Address dialed → the advertised address its welcome gave, when they differ. */
  readonly #aliases = new Map<PeerAddress, PeerAddress>()
  readonly #channelOf = new Map<PeerLink, Channel>()
  readonly #links = new Set<PeerLink>()
  #server: PeerServer | undefined
  #closed = false
  #closing: Promise<void> | undefined

  constructor(options: WsTransportOptions) {
    this.#options = options
    this.local = options.local
    this.#limits = { ...DEFAULT_TRANSPORT_LIMITS, ...options.limits }
    this.#log = options.log
    this.#counters = options.counters ?? NO_COUNTERS
    this.#codec = new FrameCodec(options.frames ?? frameRegistry, this.#limits)
    this.#dispatcher = new Dispatcher(this.#codec.registry, this.#log)
    this.#pending = new PendingRequests(options.clock, this.#limits.maxInFlightRequestsPerLink)
    this.#context = {
      codec: this.#codec, local: this.local, clusterName: options.clusterName, secret: options.secret ?? '',
      limits: this.#limits, log: this.#log, counters: this.#counters, clock: options.clock, tls: options.tls !== undefined,
    }
    this.#events = {
      admit: (link, authenticated) => this.#admit(link, authenticated),
      opened: link => this.#opened(link),
      frame: (link, frame) => this.#frame(link, frame),
      closed: link => this.#linkClosed(link),
    }
  }

  /** Listens on the peer port; returns the bound port. */
  async start(): Promise<number> {
    if (this.#server !== undefined || this.#closed) throw new Error('the transport was already started')
    this.#server = await listenPeerServer({
      host: this.#options.bindHost,
      port: this.#options.bindPort,
      limits: this.#limits,
      log: this.#log,
      counters: this.#counters,
      pendingHandshakes: () => this.#inboundHandshakes(),
      pendingHandshakesFrom: address => this.#inboundHandshakes(address),
      accept: (socket, endpoint, transportSocket) => this.#accept(socket, endpoint, transportSocket),
      ...(this.#options.tls === undefined ? {} : { tls: this.#options.tls }),
    })
    this.#log.info({ host: this.#options.bindHost, port: this.#server.port, tls: this.#options.tls !== undefined }, 'peer transport listening')
    return this.#server.port
  }

  send(to: PeerAddress, message: PeerMessage): void {
    assertKind(this.#codec.registry, message.type, 'oneway')
    if (this.#closed) return this.#counters.dropped('closed')
    const channel = this.#channelFor(to)
    if (channel === undefined) return this.#counters.dropped('unreachable')
    let frame: Uint8Array
    try {
      frame = this.#codec.encode(message.type, 0, message.body)
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error
      this.#log.error({ to, type: message.type, err: error }, 'message too large to send; dropped')
      this.#counters.dropped('too_large')
      this.#dropIfIdle(channel)
      return
    }
    if (!this.#enqueue(channel, frame, 0, this.#options.clock.nowMs() + this.#limits.oneWayQueueTimeoutMs)) {
      this.#counters.dropped('queue_full')
      this.#dropIfIdle(channel)
      return
    }
    this.#counters.frameBytes('sent', message.type, frame.byteLength, to)
    this.#ensureLink(channel)
  }

  request(to: PeerAddress, message: PeerMessage, timeoutMs: number): Promise<PeerMessage> {
    assertKind(this.#codec.registry, message.type, 'request')
    const describe = `${message.type} request to ${to}`
    if (this.#closed) return Promise.reject(new TransportError(`${describe}: the transport is closed`, 'closed'))
    const channel = this.#channelFor(to)
    if (channel === undefined) return Promise.reject(new TransportError(`${describe}: that is this node's own address`, 'unreachable'))
    let opened
    try {
      opened = this.#pending.open(channel, describe, timeoutMs)
    } catch (error) {
      return Promise.reject(error)
    }
    let frame: Uint8Array | undefined
    try {
      frame = this.#codec.encode(message.type, opened.requestId, message.body)
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error
    }
    if (frame === undefined || !this.#enqueue(channel, frame, opened.requestId, this.#options.clock.nowMs() + timeoutMs)) {
      const why = frame === undefined ? `the message exceeds maxFrameBytes ${this.#limits.maxFrameBytes}` : 'the send queue to this peer is full'
      this.#pending.reject(opened.requestId, channel, new TransportError(`${describe}: ${why}`, 'limit'))
      this.#dropIfIdle(channel)
    } else {
      this.#counters.frameBytes('sent', message.type, frame.byteLength, to)
      this.#ensureLink(channel)
    }
    return opened.answer
  }

  handle(type: string, handler: MessageHandler): void {
    this.#dispatcher.handle(type, handler)
  }

  connect(to: PeerAddress): void {
    if (this.#closed) return
    const channel = this.#channelFor(to)
    if (channel === undefined) return
    channel.wanted = true
    this.#ensureLink(channel)
  }

  forget(to: PeerAddress): void {
    const channel = this.#channels.get(this.#aliases.get(to) ?? to)
    if (channel === undefined) return
    channel.wanted = false
    this.#aliases.delete(to)
    this.#dropIfIdle(channel)
  }

  /** Closes every link and the server; pending requests fail with 'closed'. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    this.#closed = true
    for (const channel of this.#channels.values()) {
      if (channel.reconnectTimer !== undefined) this.#options.clock.clearTimeout(channel.reconnectTimer)
      const dropped = channel.queue.clear()
      for (let i = 0; i < dropped; i++) this.#counters.dropped('closed')
    }
    const sockets = [...this.#links].map(link => link.socketClosed)
    for (const link of [...this.#links]) link.close('shutdown', 'the node is shutting down')
    this.#pending.rejectAll(new TransportError('the transport is closed', 'closed'))
    await Promise.all(sockets)
    await this.#server?.close()
    this.#channels.clear()
  }

  /** The channel for `to`, created on first use; undefined for this node's own address. */
  #channelFor(to: PeerAddress): Channel | undefined {
    const address = this.#aliases.get(to) ?? to
    if (address === this.local.peer) return undefined
    let channel = this.#channels.get(address)
    if (channel === undefined) {
      if (parseHostPort(address) === undefined) throw new TypeError(`not a peer address (host:port): ${JSON.stringify(to)}`)
      channel = {
        address, link: undefined, incoming: undefined, queue: new SendQueue(), wanted: false, attempt: 0,
        reconnectTimer: undefined, flushScheduled: false, unanswered: 0, connectedPeer: undefined,
      }
      this.#channels.set(address, channel)
    }
    return channel
  }

  /**
   * Queues a frame unless that would pass maxSendQueueBytes; false when it did not fit. A frame
   * that is alone on a quiet link leaves at once (see #quiet).
   */
  #enqueue(channel: Channel, bytes: Uint8Array, requestId: number, expiresAtMs: number): boolean {
    const socketBytes = channel.link?.state === 'open' ? channel.link.bufferedAmount : 0
    if (channel.queue.bytes + socketBytes + bytes.byteLength > this.#limits.maxSendQueueBytes) return false
    channel.queue.push({ bytes, requestId, expiresAtMs })
    if (this.#quiet(channel, requestId)) this.#flushNow(channel)
    else this.#scheduleFlush(channel)
    return true
  }

  /**
   * Nothing else is on its way over this link: the frame just queued is the only one, no other
   * request of ours awaits an answer on it and no request of the peer's awaits ours. No other
   * frame is then likely to join it this turn, so the end-of-turn flush would buy no coalescing,
   * only an event-loop iteration of latency on every hop of a lone operation (docs/benchmarks.md,
   * "Lone operations"). Under load something is always in flight, and frames keep leaving
   * together once per turn.
   */
  #quiet(channel: Channel, requestId: number): boolean {
    return channel.link?.state === 'open' && !channel.flushScheduled && channel.queue.length === 1 &&
      channel.unanswered === 0 && this.#pending.inFlight(channel) === (requestId === 0 ? 0 : 1)
  }

  #flushNow(channel: Channel): void {
    try {
      this.#flush(channel)
    } catch (error) {
      this.#log.error({ peer: channel.address, err: error }, 'flushing the send queue failed')
    }
  }

  /** Frames queued in one event-loop turn leave together, in as few messages as the limits allow. */
  #scheduleFlush(channel: Channel): void {
    if (channel.flushScheduled || channel.link?.state !== 'open') return
    channel.flushScheduled = true
    setImmediate(() => {
      channel.flushScheduled = false
      this.#flushNow(channel)
    })
  }

  #flush(channel: Channel): void {
    const link = channel.link
    if (link?.state !== 'open') return
    while (channel.queue.length > 0) {
      const frames = channel.queue.takeMessage(this.#limits.maxFramesPerMessage, this.#limits.maxFrameBytes)
      // A request that timed out while queued is not worth sending.
      const live = frames.filter(frame => frame.requestId === 0 || this.#pending.has(frame.requestId))
      if (live.length === 0) continue
      for (const frame of live) if (frame.requestId !== 0) this.#pending.markSent(frame.requestId, link)
      link.write(this.#codec.joinMessage(live.map(frame => frame.bytes)))
    }
  }

  #ensureLink(channel: Channel): void {
    if (this.#closed || channel.link !== undefined || channel.incoming !== undefined || channel.reconnectTimer !== undefined) return
    this.#dial(channel)
  }

  #dial(channel: Channel): void {
    const parsed = parseHostPort(channel.address)
    if (parsed === undefined) throw new TypeError(`not a peer address: ${channel.address}`)
    let socket: WebSocket
    const tls = this.#options.tls
    try {
      // The material is read per dial, so a reload reaches the next handshake.
      socket = new WebSocket(`${tls === undefined ? 'ws' : 'wss'}://${formatHostPort(parsed.host, parsed.port)}/`, {
        perMessageDeflate: false, maxPayload: this.#limits.maxFrameBytes, handshakeTimeout: this.#limits.handshakeTimeoutMs,
        ...(tls === undefined ? {} : dialOptions(tls.source.current(), tls.minVersion)),
      })
    } catch (error) {
      this.#log.warn({ peer: channel.address, err: error }, 'cannot dial peer')
      this.#scheduleReconnect(channel)
      return
    }
    const link = new PeerLink(socket, 'dialer', channel.address, this.#context, this.#events)
    this.#links.add(link)
    this.#channelOf.set(link, channel)
    channel.link = link
  }

  #accept(socket: WebSocket, endpoint: string, transportSocket: Duplex): void {
    if (this.#closed) {
      socket.terminate()
      return
    }
    this.#links.add(new PeerLink(socket, 'acceptor', endpoint, this.#context, this.#events, peerCertificateOf(transportSocket)))
  }

  /** Inbound links in their handshake, all of them or those from `address`. */
  #inboundHandshakes(address?: string): number {
    let count = 0
    for (const link of this.#links) {
      if (link.role !== 'acceptor' || link.state !== 'handshaking') continue
      // An acceptor's endpoint is `address:port` (IPv6 addresses contain colons themselves).
      if (address === undefined || link.endpoint.slice(0, link.endpoint.lastIndexOf(':')) === address) count++
    }
    return count
  }

  /**
   * Which of two links to the same peer survives. Both nodes evaluate it alike, so both keep
   * the same one: the link dialed by the lower node id; between two links dialed by the same
   * node, the newer (the node dialed again because it lost the older, e.g. it restarted).
   */
  #wins(candidate: PeerLink, rival: PeerLink): boolean {
    const candidatePeer = candidate.remote as PeerIdentity
    // The address now belongs to another node: the old link leads to a node that is gone.
    if (rival.remote !== undefined && rival.remote.id !== candidatePeer.id) return true
    const candidateDialer = candidate.role === 'dialer' ? this.local.id : candidatePeer.id
    const rivalDialer = rival.role === 'dialer' ? this.local.id : candidatePeer.id
    return candidateDialer === rivalDialer || candidateDialer < rivalDialer
  }

  #admit(link: PeerLink, authenticated: boolean): RefuseBody | undefined {
    if (this.#closed) return { code: 'busy', reason: 'the node is shutting down' }
    const remote = link.remote as PeerIdentity
    if (remote.peer === this.local.peer) {
      return { code: 'identity', reason: `the peer advertises this node's own address ${remote.peer}` }
    }
    const channel = link.role === 'dialer' ? this.#rehome(link, remote.peer) : this.#channelFor(remote.peer)
    if (channel === undefined) return { code: 'identity', reason: `the peer advertises this node's own address ${remote.peer}` }
    const rivals = [channel.link, channel.incoming].filter((rival): rival is PeerLink => rival !== undefined && rival !== link)
    // With certificates, a node named otherwise does not take over the address of a member that
    // is linked and alive (issue 12); once that link is gone (the member moved or died) it may.
    const holder = rivals.find(rival => rival.state === 'open' && rival.remote?.nameCertified === true && rival.remote.name !== remote.name)
    if (holder?.remote !== undefined) {
      return { code: 'identity', reason: `${remote.peer} is the address of node ${JSON.stringify(holder.remote.name)}, linked and alive; ${JSON.stringify(remote.name)} cannot take it over` }
    }
    if (rivals.some(rival => !this.#wins(link, rival))) {
      return { code: 'duplicate', reason: `a link with ${remote.peer} dialed by the lower node id already exists` }
    }
    this.#channelOf.set(link, channel)
    if (!authenticated) {
      // A dialer that has not proven the secret yet only reserves the channel; it displaces
      // nothing authenticated until its proof checks out.
      const older = channel.incoming
      channel.incoming = link
      if (older !== undefined && older !== link) older.refuse({ code: 'duplicate', reason: 'superseded by a newer link from the same peer' })
      return undefined
    }
    if (channel.incoming === link) channel.incoming = undefined
    channel.link = link
    for (const rival of rivals) {
      if (rival.state === 'open') rival.close('replaced', 'another link to the same peer won')
      else rival.refuse({ code: 'duplicate', reason: 'another link to the same peer won' })
    }
    return undefined
  }

  /**
   * A dialed peer's welcome named its advertised address: when that differs from the address
   * dialed (a seed given by host name, say), traffic for both goes through one channel.
   */
  #rehome(link: PeerLink, advertised: PeerAddress): Channel | undefined {
    const dialedChannel = this.#channelOf.get(link)
    if (dialedChannel === undefined || dialedChannel.address === advertised) return dialedChannel
    const target = this.#channelFor(advertised)
    if (target === undefined) return undefined
    this.#aliases.set(dialedChannel.address, advertised)
    this.#channels.delete(dialedChannel.address)
    target.queue.takeAll(dialedChannel.queue)
    target.wanted ||= dialedChannel.wanted
    if (dialedChannel.reconnectTimer !== undefined) this.#options.clock.clearTimeout(dialedChannel.reconnectTimer)
    this.#pending.transfer(dialedChannel, target)
    if (dialedChannel.link === link) dialedChannel.link = undefined
    this.#log.debug({ dialed: dialedChannel.address, advertised }, 'dialed address is an alias of the peer\'s advertised address')
    return target
  }

  #opened(link: PeerLink): void {
    const channel = this.#channelOf.get(link)
    if (channel === undefined || channel.link !== link) return
    channel.attempt = 0
    if (channel.reconnectTimer !== undefined) this.#options.clock.clearTimeout(channel.reconnectTimer)
    channel.reconnectTimer = undefined
    const remote = link.remote as PeerIdentity
    if (channel.connectedPeer === undefined) {
      channel.connectedPeer = remote
      this.#notify(this.#options.onPeerConnected, remote)
    }
    this.#scheduleFlush(channel)
  }

  #frame(link: PeerLink, frame: Frame): void {
    const channel = this.#channelOf.get(link)
    const remote = link.remote
    if (channel === undefined || remote === undefined) return
    const message: PeerMessage = { type: frame.type.name, body: frame.body }
    const countedType = frame.type.name === RESPONSE_FRAME ? (frame.body as PeerMessage).type : frame.type.name
    this.#counters.frameBytes('received', countedType, frame.bytes, remote.peer)
    switch (frame.type.kind) {
      case 'oneway':
        void this.#dispatcher.deliver(remote, message)
        return
      case 'request':
        channel.unanswered++
        void this.#dispatcher.answer(remote, message).then(answer => {
          channel.unanswered--
          // The requester fails its request when the link closes; an answer then has no taker.
          if (link.state !== 'open') return this.#counters.dropped('closed')
          const bytes = encodeAnswer(this.#codec, frame.requestId, answer)
          if (!this.#enqueue(channel, bytes, 0, this.#options.clock.nowMs() + this.#limits.oneWayQueueTimeoutMs)) this.#counters.dropped('queue_full')
          else this.#counters.frameBytes('sent', 'reply' in answer ? answer.reply.type : ERROR_FRAME, bytes.byteLength, remote.peer)
        }).catch(error => this.#log.error({ peer: remote.peer, err: error }, 'sending an answer failed'))
        return
      case 'envelope': {
        const settled = frame.type.name === RESPONSE_FRAME
          ? this.#pending.resolve(frame.requestId, channel, frame.body as PeerMessage)
          : this.#pending.reject(frame.requestId, channel, remoteError(remote, frame.body as ErrorBody))
        // Late answers to requests that timed out are normal; they are only worth a debug line.
        if (!settled) this.#log.debug({ peer: remote.peer, requestId: frame.requestId }, 'answer to no waiting request; ignored')
        return
      }
      default:
        throw new Error(`the link passed a ${frame.type.kind} frame to the transport`)
    }
  }

  #linkClosed(link: PeerLink): void {
    this.#links.delete(link)
    const channel = this.#channelOf.get(link)
    this.#channelOf.delete(link)
    this.#pending.rejectSentOn(link, new TransportError(`the link to ${link.peerLabel} closed before the answer came`, 'closed'))
    if (channel === undefined) return
    if (channel.incoming === link) channel.incoming = undefined
    if (channel.link === link) {
      channel.link = undefined
      if (channel.connectedPeer !== undefined) {
        const peer = channel.connectedPeer
        channel.connectedPeer = undefined
        this.#notify(this.#options.onPeerDisconnected, peer)
      }
    }
    if (this.#closed || channel.link !== undefined || channel.incoming !== undefined) return
    if (link.role === 'dialer' && link.refusal !== undefined && FATAL_REFUSALS.has(link.refusal.code)) {
      // The nodes disagree on configuration: nothing queued will get through before a human acts.
      const error = new TransportError(`${link.peerLabel} refused the link: ${link.refusal.reason}`, 'refused')
      this.#pending.rejectOwner(channel, error)
      const dropped = channel.queue.clear()
      for (let i = 0; i < dropped; i++) this.#counters.dropped('unreachable')
    }
    this.#scheduleReconnect(channel)
  }

  /** Open links, one per peer, for status pages and tests. */
  links(): LinkStatus[] {
    const links: LinkStatus[] = []
    for (const channel of this.#channels.values()) {
      const link = channel.link
      if (link?.state === 'open' && link.remote !== undefined) {
        const serial = link.certificate?.serial
        links.push({ ...link.remote, direction: link.role === 'dialer' ? 'outbound' : 'inbound', ...(serial === undefined ? {} : { serial }) })
      }
    }
    return links
  }

  /** Dials again after a backoff while the peer is wanted or messages wait for it. */
  #scheduleReconnect(channel: Channel): void {
    if (this.#closed || channel.reconnectTimer !== undefined) return
    this.#dropExpired(channel)
    if (this.#dropIfIdle(channel)) return
    const delayMs = backoffDelayMs(channel.attempt++, this.#limits.reconnectBaseMs, this.#limits.reconnectCapMs, () => this.#options.random.next())
    channel.reconnectTimer = this.#options.clock.setTimeout(() => {
      channel.reconnectTimer = undefined
      try {
        this.#dropExpired(channel)
        if (!this.#dropIfIdle(channel)) this.#ensureLink(channel)
      } catch (error) {
        this.#log.error({ peer: channel.address, err: error }, 'reconnecting failed')
      }
    }, delayMs)
  }

  #dropExpired(channel: Channel): void {
    const dropped = channel.queue.dropExpired(this.#options.clock.nowMs())
    for (let i = 0; i < dropped; i++) this.#counters.dropped('unreachable')
  }

  /** Forgets a channel nothing needs (no link, not wanted, nothing queued); true when it did. */
  #dropIfIdle(channel: Channel): boolean {
    if (channel.link !== undefined || channel.incoming !== undefined || channel.wanted || channel.queue.length > 0) return false
    if (channel.reconnectTimer !== undefined) this.#options.clock.clearTimeout(channel.reconnectTimer)
    channel.reconnectTimer = undefined
    if (this.#channels.get(channel.address) === channel) this.#channels.delete(channel.address)
    return true
  }

  #notify(callback: ((peer: PeerIdentity) => void) | undefined, peer: PeerIdentity): void {
    try {
      callback?.(peer)
    } catch (error) {
      this.#log.error({ peer: peer.peer, err: error }, 'peer connection callback failed')
    }
  }
}

function remoteError(remote: PeerIdentity, body: ErrorBody): TransportError {
  return new TransportError(`${remote.peer} answered ${body.code}: ${body.message}`, 'remote')
}
