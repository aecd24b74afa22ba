import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { capConnectionsPerAddress } from '../runtime/connection-cap.js'
import { listenOn } from '../runtime/listen.js'
import type { TransportCounters } from './counters.js'
import type { TransportLimits } from './limits.js'
import { secureContextOptions, type PeerTlsOptions } from './peer-tls.js'
import { describeTlsFailure, tlsFailureReason } from './tls-failure.js'

/**
 * The peer port: an HTTP server that only upgrades to WebSocket. Owning the HTTP server (rather
 * than letting ws create one) bounds what unauthenticated clients get: a short header deadline,
 * a cap on handshakes in progress, and garbage answered by closing the socket.
 *
 * With TLS (`tls.peer on`) the port speaks only TLS with a client certificate from tls.ca. The
 * first byte of a connection tells a TLS ClientHello (a handshake record, 0x16) from plaintext:
 * plaintext gets an HTTP 400 that says why, so a node still on `tls.peer off` logs the reason
 * instead of a bare reset, and is counted as a `plaintext` TLS failure here.
 */

export interface PeerServerOptions {
  readonly host: string
  readonly port: number
  readonly limits: TransportLimits
  readonly log: Logger
  readonly counters: TransportCounters
  /** Inbound links still in their handshake, for the maxPendingHandshakes bound. */
  readonly pendingHandshakes: () => number
  /** The same, from one remote address (maxPendingHandshakesPerAddress). */
  readonly pendingHandshakesFrom: (address: string) => number
  /**
   * A new WebSocket; `endpoint` is the remote socket address for logs; `transportSocket` is the
   * socket under it (a TLSSocket with TLS, for the peer's certificate).
   */
  readonly accept: (socket: WebSocket, endpoint: string, transportSocket: Duplex) => void
  /** Peer links over TLS only; the material is re-read on every change of the source. */
  readonly tls?: PeerTlsOptions
}

/** The header a TLS peer port's answer to plaintext carries, for the dialer's log. */
export const PLAINTEXT_REFUSAL_HEADER = 'hearsay-refusal'
const PLAINTEXT_REFUSAL = 'this peer port requires TLS (tls.peer on); set tls.peer on and the certificates on the dialing node too'
/** First byte of a TLS record carrying a handshake message (RFC 8446 §5.1, content type 22). */
const TLS_HANDSHAKE_RECORD = 0x16

export interface PeerServer {
  readonly port: number
  close(): Promise<void>
}

/** How often node:http checks the header deadline of connections not yet upgraded. */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000

export async function listenPeerServer(options: PeerServerOptions): Promise<PeerServer> {
  const { limits, log, counters } = options
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: limits.maxFrameBytes, clientTracking: false })
  // Deadlines are checked every second, not every 30 s (node:http's default), so a silent
  // connection lasts about handshakeTimeoutMs rather than 20–30 s (issue 17).
  const answer = (_request: http.IncomingMessage, response: http.ServerResponse): void => {
    response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close' })
    response.end('this is a hearsay peer port: it speaks WebSocket to other hearsay nodes only\n')
  }
  const tls = options.tls
  const secureServer = tls === undefined ? undefined : https.createServer({
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    ...secureContextOptions(tls.source.current(), tls.minVersion),
    requestCert: true,
    rejectUnauthorized: true,
    handshakeTimeout: limits.handshakeTimeoutMs,
  }, answer)
  const server: http.Server = secureServer ?? http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, answer)
  server.headersTimeout = limits.handshakeTimeoutMs
  server.requestTimeout = limits.handshakeTimeoutMs
  const listener = tls === undefined ? server : tlsListener(server, limits, log, counters)
  // A reload (SIGHUP) changes what new handshakes present and trust; open links keep theirs.
  const unsubscribe = tls?.source.onChange(material => {
    try {
      secureServer?.setSecureContext(secureContextOptions(material, tls.minVersion))
      log.info({ serial: material.serial }, 'peer port TLS certificate replaced; new handshakes use it')
    } catch (error) {
      log.error({ err: error }, 'the reloaded TLS material was refused by the peer port; it keeps the previous one')
    }
  })
  if (secureServer !== undefined) {
    secureServer.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      const reason = tlsFailureReason(error, socket.authorizationError)
      counters.tlsFailure(reason)
      log.warn({ endpoint: tlsEndpoint(socket), reason, code: socket.authorizationError ?? error.code, detail: error.message },
        `TLS handshake on the peer port failed: ${describeTlsFailure(reason)}`)
    })
  }
  capConnectionsPerAddress(listener, limits.maxConnectionsPerAddress, (socket, address, open) => {
    counters.refused('local', 'busy')
    log.warn({ address, open, maxConnectionsPerAddress: limits.maxConnectionsPerAddress }, 'too many connections to the peer port from one address; connection closed')
    socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n')
  })

  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    // HPE_* codes are Node's HTTP parser rejecting the bytes: garbage, or over-long headers.
    if (error.code?.startsWith('HPE_') === true) {
      counters.malformed(error.code === 'HPE_HEADER_OVERFLOW' ? 'oversized' : 'undecodable')
      const rawPacket = (error as { rawPacket?: unknown }).rawPacket
      if (Buffer.isBuffer(rawPacket) && rawPacket[0] === TLS_HANDSHAKE_RECORD) {
        log.warn({ code: error.code }, 'a TLS client on the plaintext peer port: the dialing node has tls.peer on, this one off; set it alike on both')
        // Plaintext bytes make the TLS dialer's OpenSSL report "wrong version number", which it
        // logs as a plaintext peer, rather than a bare reset.
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
        return
      }
      log.warn({ code: error.code }, 'garbage on the peer port; connection closed')
    }
    socket.destroy()
  })

  server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      socket.on('error', (error: Error) => log.debug({ err: error }, 'peer socket error during upgrade'))
      const endpoint = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`
      if (options.pendingHandshakes() >= limits.maxPendingHandshakes) {
        counters.refused('local', 'busy')
        log.warn({ endpoint, pending: options.pendingHandshakes() }, 'too many peer handshakes in progress; connection turned away')
        socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n')
        return
      }
      const address = request.socket.remoteAddress ?? '?'
      if (options.pendingHandshakesFrom(address) >= limits.maxPendingHandshakesPerAddress) {
        counters.refused('local', 'busy')
        log.warn({ endpoint, pending: options.pendingHandshakesFrom(address) }, 'too many peer handshakes in progress from one address; connection turned away')
        socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n')
        return
      }
      wss.handleUpgrade(request, socket, head, webSocket => options.accept(webSocket, endpoint, socket))
    } catch (error) {
      log.error({ err: error }, 'peer upgrade failed')
      socket.destroy()
    }
  })

  await listenOn(listener, options.host, options.port, 'peer.port')
  listener.on('error', (error: Error) => log.error({ err: error }, 'peer server error'))
  if (listener !== server) server.on('error', (error: Error) => log.error({ err: error }, 'peer server error'))
  const address = listener.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port

  return {
    port,
    close: () => new Promise<void>(resolve => {
      unsubscribe?.()
      wss.close()
      listener.close(() => resolve())
      if (listener !== server) {
        server.close()
        for (const socket of (listener as TlsListener).sockets) socket.destroy()
      }
      // Sockets still in the HTTP stage (not yet links) would hold close() open.
      server.closeAllConnections()
    }),
  }
}

/**
 * The remote address of a TLS socket whose handshake failed: by then the TLS socket itself no
 * longer knows it, the TCP socket under it (`_parent`, not typed by Node) still does.
 */
function tlsEndpoint(socket: TLSSocket): string {
  const raw = (socket as TLSSocket & { _parent?: net.Socket })._parent ?? socket
  return `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`
}

interface TlsListener extends net.Server {
  /** Every connection still open, for close(): some never reach the HTTPS server's tracking. */
  readonly sockets: Set<net.Socket>
}

/**
 * The TCP listener in front of the HTTPS server: hands TLS connections to it and answers
 * plaintext with a 400 that names the reason (see the module comment).
 */
function tlsListener(server: http.Server, limits: TransportLimits, log: Logger, counters: TransportCounters): TlsListener {
  const sockets = new Set<net.Socket>()
  const listener = net.createServer({ pauseOnConnect: true }, socket => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', (error: Error) => log.debug({ err: error }, 'peer socket error before TLS'))
    // A connection that sends nothing holds a descriptor; the TLS handshake deadline covers the rest.
    socket.setTimeout(limits.handshakeTimeoutMs, () => socket.destroy())
    socket.once('readable', () => {
      const first: Buffer | null = socket.read(1)
      if (first === null) return socket.destroy()
      socket.unshift(first)
      if (first[0] === TLS_HANDSHAKE_RECORD) {
        // From here the TLS handshake timeout and the HTTP header deadline apply.
        socket.setTimeout(0)
        server.emit('connection', socket)
        return
      }
      counters.tlsFailure('plaintext')
      log.warn({ endpoint: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, reason: 'plaintext' },
        `plaintext connection on the TLS peer port refused: ${describeTlsFailure('plaintext')}`)
      socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n${PLAINTEXT_REFUSAL_HEADER}: ${PLAINTEXT_REFUSAL}\r\n\r\n`)
    })
  })
  return Object.assign(listener, { sockets })
}
