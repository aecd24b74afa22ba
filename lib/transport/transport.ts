import type { NodeId } from '../clock/version.js'

/**
 * The seam between protocol logic (membership, replication, anti-entropy) and the wire.
 * Two implementations: WebSocket links for the daemon (lib/transport/ws-transport.ts) and an
 * in-memory network with a controllable clock, delay, loss and partitions for tests and
 * simulations (lib/transport/memory-network.ts). Protocol code sees only this interface.
 */

/** `host:port` as advertised by a node (never a bind address such as 0.0.0.0). */
export type PeerAddress = string

/** Identity of the node on the other end of a link, proven by the handshake. */
export interface PeerIdentity {
  readonly id: NodeId
  readonly name: string
  /** Advertised peer address of that node. */
  readonly peer: PeerAddress
  /** Advertised client API address of that node. */
  readonly api: string
  /**
   * True when the peer's verified TLS certificate names `name` (tls.peer on); otherwise the
   * name is only what its handshake claimed.
   */
  readonly nameCertified?: boolean
}

/**
 * One protocol message: a frame type name from lib/codec/frames.ts and its already validated
 * body. The transport encodes it as a MessagePack frame `[typeCode, requestId, body]`.
 */
export interface PeerMessage {
  readonly type: string
  readonly body: unknown
}

/** Answer to a request, or undefined for a one-way message. */
export type MessageHandler = (from: PeerIdentity, message: PeerMessage) => PeerMessage | undefined | Promise<PeerMessage | undefined>

export interface Transport {
  /** This node's identity as it is advertised to peers. */
  readonly local: PeerIdentity
  /**
   * Queue a one-way message to the node at `to`. Never throws for the network's sake: a message
   * to an unreachable peer is dropped (and counted), because a closed link is a hint, never a
   * verdict — the failure detector decides whether the peer is gone. A type that is not a
   * one-way type, or an address that is not `host:port`, is a programming error (TypeError).
   */
  send(to: PeerAddress, message: PeerMessage): void
  /**
   * Request/response by requestId. Rejects with a TransportError when no answer comes within
   * `timeoutMs` (timeout), the link fails (closed), the peer refuses the link (refused), a
   * bound is reached (limit), or the peer answers with an error frame (remote).
   */
  request(to: PeerAddress, message: PeerMessage, timeoutMs: number): Promise<PeerMessage>
  /**
   * Keep a link to `to` open, reconnecting with backoff while it is down, until forget(to).
   * Membership may call it for every known member so that probes find a link ready.
   */
  connect(to: PeerAddress): void
  /** Stop keeping a link to `to`: no reconnects unless messages wait for it; an open link stays. */
  forget(to: PeerAddress): void
  /**
   * One handler per message type (a oneway or request type of lib/codec/frames.ts); registering
   * a type twice is a programming error. A request handler answers with a reply-kind message.
   */
  handle(type: string, handler: MessageHandler): void
  close(): Promise<void>
}

/**
 * Thrown by a request handler that declines on purpose (the node is repairing, say): the asker
 * gets an `error` frame with code `declined` and the reason, and nothing is logged as a failure.
 */
export class RequestDeclinedError extends Error {
  constructor(reason: string) {
    super(reason)
    this.name = 'RequestDeclinedError'
  }
}

/** In a request handler: declines with `reason` when there is one (see RequestDeclinedError). */
export function declineIf(reason: string | undefined): void {
  if (reason !== undefined) throw new RequestDeclinedError(reason)
}

export class TransportError extends Error {
  constructor(message: string, readonly code: 'timeout' | 'unreachable' | 'closed' | 'refused' | 'remote' | 'limit') {
    super(message)
    this.name = 'TransportError'
  }
}
