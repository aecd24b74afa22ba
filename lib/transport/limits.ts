/**
 * Bounds of the peer transport. The daemon fills them from config later; these defaults suit a
 * LAN node with modest memory. Every queue and wait the transport keeps is bounded by one.
 */
export interface TransportLimits {
  /** Largest encoded frame; also the largest WebSocket message (frames are batched up to it). */
  readonly maxFrameBytes: number
  /** Most frames batched into one WebSocket message. */
  readonly maxFramesPerMessage: number
  /** Requests awaiting an answer per peer, queued or on the wire; more reject with 'limit'. */
  readonly maxInFlightRequestsPerLink: number
  /** Bytes queued for one peer (ours plus the socket's buffer); over it, sends drop and requests reject. */
  readonly maxSendQueueBytes: number
  /** From dialing (or accepting) to an established link; slower handshakes are closed. */
  readonly handshakeTimeoutMs: number
  /** Largest message before the handshake completes: unauthenticated peers get little memory. */
  readonly maxHandshakeMessageBytes: number
  /** Inbound connections still in their handshake; more are turned away with 503. */
  readonly maxPendingHandshakes: number
  /**
   * Of those, the most from one address: one host cannot hold every slot and keep a restarting
   * member out (issue 17).
   */
  readonly maxPendingHandshakesPerAddress: number
  /** Open connections to the peer port from one address (links and connections not yet upgraded); more are closed. */
  readonly maxConnectionsPerAddress: number
  /** How long a one-way message waits in the queue for a link to its peer before it is dropped. */
  readonly oneWayQueueTimeoutMs: number
  /** Reconnect backoff: full jitter over min(cap, base × 2^attempt). */
  readonly reconnectBaseMs: number
  readonly reconnectCapMs: number
  /** WebSocket ping interval; a link silent for two intervals is closed as dead. */
  readonly keepaliveIntervalMs: number
  /** close() waits this long for links to finish their close handshake, then cuts them. */
  readonly closeTimeoutMs: number
}

const MiB = 1024 * 1024

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  maxFrameBytes: 4 * MiB,
  maxFramesPerMessage: 256,
  maxInFlightRequestsPerLink: 1024,
  maxSendQueueBytes: 16 * MiB,
  // A LAN handshake takes milliseconds; a dial into a partition should give up soon enough that
  // the next one finds the healed network (see reconnectCapMs).
  handshakeTimeoutMs: 2000,
  maxHandshakeMessageBytes: 4096,
  maxPendingHandshakes: 64,
  maxPendingHandshakesPerAddress: 16,
  maxConnectionsPerAddress: 64,
  oneWayQueueTimeoutMs: 5000,
  reconnectBaseMs: 100,
  // Dialing is one SYN on a LAN: a short cap means a healed partition finds its links again
  // within about a second, which membership's dead-member push-pulls rely on (≤ 3 s heal goal).
  reconnectCapMs: 1000,
  keepaliveIntervalMs: 5000,
  closeTimeoutMs: 1000,
}
