import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { UnavailableError, type HearsayError } from '../../errors.js'
import type { Metrics } from '../../metrics/metrics.js'
import type { LinearizableService } from '../../paxos/service.js'
import type { KvService } from '../../replication/service.js'
import type { ApiLimits } from '../limits.js'
import type { WatchPort } from '../watch-route.js'
import { ByteBudget } from './budget.js'
import { StreamCodec } from './codec.js'
import { ServerStreamConnection } from './connection.js'
import { StreamCounters } from './counters.js'
import { CLOSE_GOING_AWAY, MAX_IN_FLIGHT_HEADER, MAX_MESSAGE_BYTES_HEADER, STREAM_PATH, type StreamLimits } from './protocol.js'

/**
 * The stream endpoint on the API port: takes WebSocket upgrades at STREAM_PATH (bearer token
 * checked like every route), keeps the connections, pings them, and closes them on shutdown
 * once their requests are answered. Upgrades elsewhere, with a wrong token, while shutting down
 * or beyond maxConnections are answered with the HTTP API's JSON errors.
 */

export interface StreamServerDeps {
  readonly kv: KvService
  /** Linearizable operations; absent = they answer 503. */
  readonly linearizable?: LinearizableService | undefined
  readonly limits: ApiLimits
  readonly streamLimits: StreamLimits
  readonly metrics: Metrics
  readonly log: Logger
  /** A limit refused work (counted in hearsay_limit_refusals_total, logged at most once a second per limit). */
  refused(limit: string, detail: Record<string, unknown>): void
  /** Checks the upgrade's Authorization header; undefined = no token required. */
  readonly isAuthorized: ((authorization: string | undefined) => boolean) | undefined
  /** Why new requests are refused right now (paused, overloaded), if they are. */
  refusal(): HearsayError | undefined
  /** The node's watches (stream watch operations); absent = they answer 503. */
  readonly watches?: WatchPort
}

export interface StreamServer {
  /** The API server's 'upgrade' listener. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Stream requests being handled now. */
  readonly inFlight: number
  readonly connections: number
  /** Whether the flush, keepalive and timeout timers run (only while a connection is open or a request finishing). */
  readonly timersRunning: boolean
  /** Bytes held for stream connections now (the node-wide budget's use). */
  readonly heldBytes: number
  /**
   * Refuses new connections and requests (503), waits at most `graceMs` for the requests in
   * flight, then closes every connection ("going away") and resolves once they are gone.
   */
  close(graceMs: number): Promise<void>
}

/** How often the counters reach the Prometheus metrics. */
const COUNTER_FLUSH_INTERVAL_MS = 1000
/** How often connections are checked against idleTimeoutMs and messageTimeoutMs. */
const TIMEOUT_CHECK_INTERVAL_MS = 1000
/** Time a refused client gets to read the refusal before its socket is destroyed. */
const REFUSAL_LINGER_MS = 1000

export function createStreamServer(deps: StreamServerDeps): StreamServer {
  const { streamLimits, log } = deps
  const counters = new StreamCounters(deps.metrics)
  const codec = new StreamCodec()
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: streamLimits.maxMessageBytes, clientTracking: false })
  // The client learns the bounds it is held to from the upgrade answer.
  wss.on('headers', (headers: string[]) => {
    headers.push(`${MAX_IN_FLIGHT_HEADER}: ${streamLimits.maxInFlightPerConnection}`, `${MAX_MESSAGE_BYTES_HEADER}: ${streamLimits.maxMessageBytes}`)
  })
  const connections = new Set<ServerStreamConnection>()
  let inFlight = 0
  let closing = false
  let onDrained: (() => void) | undefined
  let onAllClosed: (() => void) | undefined
  const nodeBudget = new ByteBudget(streamLimits.maxTotalBytes)

  const context = {
    kv: deps.kv,
    linearizable: deps.linearizable,
    limits: deps.limits,
    streamLimits,
    codec,
    counters,
    log,
    nodeBudget,
    refused: deps.refused,
    ...(deps.watches === undefined ? {} : { watches: deps.watches }),
    refusal: () => closing ? new UnavailableError('this node is shutting down; retry on another node', { nodeState: 'leaving' }) : deps.refusal(),
    requestStarted() {
      inFlight++
    },
    requestFinished() {
      inFlight--
      if (inFlight === 0) onDrained?.()
      stopTimersWhenIdle()
    },
  }

  /**
   * The counter flush, the keepalive and the timeout check run only while a connection is open
   * or a request still finishing: a node nobody streams to sets no timer (three wake-ups a
   * second before). The last flush happens when they stop.
   */
  let timers: { readonly flush: NodeJS.Timeout; readonly keepalive: NodeJS.Timeout; readonly timeout: NodeJS.Timeout } | undefined
  function startTimers(): void {
    if (timers !== undefined) return
    timers = {
      flush: setInterval(() => counters.flush(), COUNTER_FLUSH_INTERVAL_MS).unref(),
      keepalive: setInterval(() => {
        for (const connection of connections) connection.keepalive()
      }, streamLimits.keepaliveIntervalMs).unref(),
      timeout: setInterval(() => {
        const nowMs = Date.now()
        for (const connection of connections) connection.checkTimeouts(nowMs)
      }, Math.min(TIMEOUT_CHECK_INTERVAL_MS, streamLimits.messageTimeoutMs, streamLimits.idleTimeoutMs)).unref(),
    }
  }
  function stopTimers(): void {
    if (timers === undefined) return
    clearInterval(timers.flush)
    clearInterval(timers.keepalive)
    clearInterval(timers.timeout)
    timers = undefined
    counters.flush()
  }
  function stopTimersWhenIdle(): void {
    if (connections.size === 0 && inFlight === 0) stopTimers()
  }

  function accept(socket: WebSocket, endpoint: string, rawSocket: Duplex): void {
    const connection = new ServerStreamConnection(socket, endpoint, context, closed => {
      connections.delete(closed)
      stopTimersWhenIdle()
      if (connections.size === 0) onAllClosed?.()
    }, rawSocket)
    connections.add(connection)
    startTimers()
    log.debug({ endpoint }, 'stream connection opened')
  }

  function refuse(socket: Duplex, status: number, error: string, headers: Record<string, string> = {}): void {
    const body = JSON.stringify({ error })
    const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`
      + 'content-type: application/json; charset=utf-8\r\n'
      + `content-length: ${Buffer.byteLength(body)}\r\n`
      + `connection: close\r\n${extra}\r\n`
      + body,
    )
    const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref()
    socket.once('close', () => clearTimeout(linger))
  }

  function drained(timeoutMs: number): Promise<void> {
    if (inFlight === 0) return Promise.resolve()
    return new Promise(resolve => {
      const timer = setTimeout(resolve, timeoutMs)
      onDrained = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  return {
    upgrade(request, socket, head) {
      try {
        socket.on('error', (error: Error) => log.debug({ err: error.message }, 'stream socket error during upgrade'))
        const path = (request.url ?? '/').split('?')[0]
        if (path !== STREAM_PATH || request.headers.upgrade?.toLowerCase() !== 'websocket') {
          return refuse(socket, 400, `this API upgrades only to WebSocket at ${STREAM_PATH}; send HTTP requests without an Upgrade header`)
        }
        if (deps.isAuthorized !== undefined && !deps.isAuthorized(request.headers.authorization)) {
          return refuse(socket, 401, 'missing or wrong bearer token; send "Authorization: Bearer <token>"', { 'www-authenticate': 'Bearer realm="hearsay"' })
        }
        if (closing) return refuse(socket, 503, 'this node is shutting down; retry on another node', { 'retry-after': '1' })
        if (connections.size >= streamLimits.maxConnections) {
          return refuse(socket, 503, `this node has ${streamLimits.maxConnections} stream connections open, its limit; retry shortly or use HTTP`, { 'retry-after': '1' })
        }
        const endpoint = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`
        wss.handleUpgrade(request, socket, head, webSocket => accept(webSocket, endpoint, socket))
      } catch (error) {
        log.error({ err: error }, 'stream upgrade failed')
        socket.destroy()
      }
    },

    get inFlight() {
      return inFlight
    },

    get connections() {
      return connections.size
    },

    get timersRunning() {
      return timers !== undefined
    },

    get heldBytes() {
      return nodeBudget.usedBytes
    },

    async close(graceMs) {
      closing = true
      await drained(graceMs)
      stopTimers()
      counters.flush()
      if (connections.size === 0) return
      const allClosed = new Promise<void>(resolve => { onAllClosed = resolve })
      for (const connection of connections) connection.close(CLOSE_GOING_AWAY, 'this node is shutting down; retry on another node')
      // Each connection is cut after closeTimeoutMs at the latest, which bounds this wait.
      await allClosed
    },
  }
}
