import type { MalformedReason } from '../codec/codec.js'
import type { RefuseCode } from '../codec/transport-frames.js'
import type { TlsFailureReason } from './tls-failure.js'

/**
 * What the transport counts, as callbacks: the composition root turns them into prom-client
 * metrics (lib/metrics), tests record them. Every label value comes from a small fixed set.
 */

/** Why a message never reached the wire. */
export type DropReason = 'unreachable' | 'queue_full' | 'closed' | 'too_large'

/** Why an established or handshaking link ended. */
export type LinkCloseReason =
  | 'remote'              // the peer closed it or the connection failed
  | 'malformed'           // the peer sent something malformed (also counted by malformed())
  | 'refused'             // a handshake ended in REFUSE (also counted by refused())
  | 'handshake_timeout'
  | 'keepalive'           // silent for two keepalive intervals
  | 'replaced'            // another link to the same peer won (docs/protocol.md "One link per pair")
  | 'shutdown'
  | 'internal'            // a bug in this node's handling; logged as an error

export interface TransportCounters {
  linkOpened(direction: 'inbound' | 'outbound'): void
  linkClosed(reason: LinkCloseReason): void
  /** A handshake refused by this node (local) or by the peer (remote). */
  refused(by: 'local' | 'remote', code: RefuseCode): void
  malformed(reason: MalformedReason): void
  /** A TLS handshake on a peer connection failed (either side), or a TLS link's certificate named another node. */
  tlsFailure(reason: TlsFailureReason): void
  dropped(reason: DropReason): void
  /**
   * Bytes of one frame sent or received on an established link, by message type (a response is
   * counted under its reply's type), with the peer's advertised address.
   */
  frameBytes(direction: 'sent' | 'received', type: string, bytes: number, peer: string): void
}

export const NO_COUNTERS: TransportCounters = {
  linkOpened: () => {},
  linkClosed: () => {},
  refused: () => {},
  malformed: () => {},
  tlsFailure: () => {},
  dropped: () => {},
  frameBytes: () => {},
}
