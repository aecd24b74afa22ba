import http from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { capConnectionsPerAddress } from '../runtime/connection-cap.js'
import type { TransportCounters } from './counters.js'
import type { TransportLimits } from './limits.js'

/**
 * The peer port: an HTTP server that only upgrades to WebSocket. Owning the HTTP server (rather
 * than letting ws create one) bounds what unauthenticated clients get: a short header deadline,
 * a cap on handshakes in progress, and garbage answered by closing the socket.
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
  /** A new WebSocket; `endpoint` is the remote socket address for logs. */
  readonly accept: (socket: WebSocket, endpoint: string) => void
}

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
  const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, (_request, response) => {
    response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close' })
    response.end('this is a hearsay peer port: it speaks WebSocket to other hearsay nodes only\n')
  })
  server.headersTimeout = limits.handshakeTimeoutMs
  server.requestTimeout = limits.handshakeTimeoutMs
  capConnectionsPerAddress(server, limits.maxConnectionsPerAddress, (socket, address, open) => {
    counters.refused('local', 'busy')
    log.warn({ address, open, maxConnectionsPerAddress: limits.maxConnectionsPerAddress }, 'too many connections to the peer port from one address; connection closed')
    socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n')
  })

  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    // HPE_* codes are Node's HTTP parser rejecting the bytes: garbage, or over-long headers.
    if (error.code?.startsWith('HPE_') === true) {
      counters.malformed(error.code === 'HPE_HEADER_OVERFLOW' ? 'oversized' : 'undecodable')
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
      wss.handleUpgrade(request, socket, head, webSocket => options.accept(webSocket, endpoint))
    } catch (error) {
      log.error({ err: error }, 'peer upgrade failed')
      socket.destroy()
    }
  })

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error & { code?: string }): void => {
      reject(new Error(error.code === 'EADDRINUSE'
        ? `peer port ${options.port} on ${options.host} is already in use; choose another peer.port`
        : `cannot listen on the peer port ${options.host}:${options.port}: ${error.message}`))
    }
    server.once('error', onError)
    server.listen(options.port, options.host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  server.on('error', (error: Error) => log.error({ err: error }, 'peer server error'))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port

  return {
    port,
    close: () => new Promise<void>(resolve => {
      wss.close()
      server.close(() => resolve())
      // Sockets still in the HTTP stage (not yet links) would hold close() open.
      server.closeAllConnections()
    }),
  }
}
