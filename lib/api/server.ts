import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { MethodNotAllowedError, NotFoundError, UnavailableError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import type { KvService } from '../replication/service.js'
import type { LinearizableService } from '../paxos/service.js'
import { capConnectionsPerAddress } from '../runtime/connection-cap.js'
import { listenOn } from '../runtime/listen.js'
import { bearerChecker } from './auth.js'
import { streamLimitsFor, type StreamLimits } from './binary/protocol.js'
import { createStreamServer } from './binary/stream-server.js'
import { readBody } from './body.js'
import { clientErrorHandler } from './client-error.js'
import { ClientGoneError, UnauthorizedError, errorAnswer } from './errors.js'
import { DASHBOARD_PUBLIC_ROUTES, dashboardRoutes, type DashboardPort } from './dashboard-routes.js'
import { batchRoutes, keyRoutes, scanRoutes } from './kv-routes.js'
import { snapshotRoutes, type SnapshotPort } from './snapshot-route.js'
import { lifecycleRoutes, type LifecyclePort } from './lifecycle-routes.js'
import { assertApiLimits, type ApiLimits } from './limits.js'
import { nodeRoutes } from './node-routes.js'
import type { WatchPort } from './watch-route.js'
import { refusalReporter } from './refusals.js'
import { sendJson } from './respond.js'
import { handshakeFailureHandler, secureContextOptions, tlsServerOptions, type ApiTlsSettings } from './tls.js'
import { UNMATCHED_ROUTE, allowedMethods, matchPath, splitTarget, type Handler, type RequestContext, type RouteHandlers, type RouteTable } from './routes.js'
import type { HealthView, MemberView } from './views.js'

/**
 * The client HTTP API on plain node:http (measured faster than fastify here, and the API is
 * small). It reaches the data only through KvService and the node only through the callbacks
 * in ApiDeps, so the composition root decides what status, health and members mean.
 */

export interface ApiDeps {
  readonly kv: KvService
  /** Linearizable operations (CASPaxos); absent = those requests answer 503. */
  readonly linearizable?: LinearizableService
  /** JSON for GET /status (node id, name, keys, store size, uptime, version, ...). */
  status(): Promise<Record<string, unknown>> | Record<string, unknown>
  /** GET /health answers 200 only while the status is 'ok'. */
  health(): HealthView
  /** Rows of GET /members. */
  members(): readonly MemberView[]
  /** Runs one anti-entropy round for POST /admin/sync; absent = that route answers 503. */
  readonly sync?: () => Promise<Record<string, unknown>>
  readonly metrics: Metrics
  readonly log: Logger
  readonly limits: ApiLimits
  /** Bearer token every route but /health requires when set. */
  readonly token?: string
  /** Serve HTTPS and WSS instead of HTTP and WS (tls.api on or mutual). */
  readonly tls?: ApiTlsSettings
  /** Bounds of the stream protocol (lib/api/binary) where they differ from streamLimitsFor(limits). */
  readonly streamLimits?: Partial<StreamLimits>
  /** The node's watches; absent = `watch=true` answers 503. */
  readonly watches?: WatchPort
  /** Time between SSE heartbeat comments (watch.heartbeatMs). */
  readonly watchHeartbeatMs?: number
  /** The dashboard's cluster stream and replica view (lib/dashboard); absent = those answer 503. */
  readonly dashboard?: DashboardPort
  /** Told the latency of each finished data request (/kv, /kv/:key, /batch), for the dashboard's sparklines. */
  readonly onDataRequest?: (latencyMs: number) => void
  /** GET /snapshot (lib/store/snapshot.ts); absent = it answers 503. */
  readonly snapshot?: SnapshotPort
  /** Member removal and decommission (lib/lifecycle); absent = those routes answer 503. */
  readonly lifecycle?: LifecyclePort
}

export interface ApiServer {
  /** Binds and starts serving; resolves with the bound address (port 0 picks a free port). */
  listen(host: string, port: number): Promise<{ host: string; port: number }>
  /**
   * Stops accepting connections, lets in-flight requests finish for at most `graceMs`, then
   * closes every remaining connection. Requests arriving meanwhile answer 503.
   */
  close(graceMs: number): Promise<void>
  /** Requests being handled right now, HTTP and stream (lib/api/binary) together. */
  readonly inFlight: number
  /** Answer new requests 503 (e.g. while peer send queues are full) until resumeAccepting. */
  pauseAccepting(): void
  resumeAccepting(): void
}

/** Time a client gets to read a 413 before its connection, still carrying the body, is destroyed. */
const REFUSED_BODY_LINGER_MS = 1000

/** How often node:http checks the header and request deadlines of open connections. */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000

/** Longest wait for responses to report closed after their sockets were destroyed. */
const CLOSE_SETTLE_MS = 1000

/** SSE heartbeat interval when the deps give none (watch.heartbeatMs's default). */
const DEFAULT_WATCH_HEARTBEAT_MS = 5000

/** Metric label values for methods; anything else counts as 'other' to bound cardinality. */
const METHOD_LABELS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'POST'])

export function createApiServer(deps: ApiDeps): ApiServer {
  assertApiLimits(deps.limits)
  const { limits, metrics, log } = deps
  const kvDeps = { kv: deps.kv, linearizable: deps.linearizable, limits, metrics, ...(deps.watches === undefined ? {} : { watches: deps.watches }), watchHeartbeatMs: deps.watchHeartbeatMs ?? DEFAULT_WATCH_HEARTBEAT_MS }
  const dashboard = dashboardRoutes({ ...(deps.dashboard !== undefined ? { dashboard: deps.dashboard } : {}), limits })
  const routes: RouteTable = {
    ...nodeRoutes(deps),
    ...dashboard.routes,
    ...snapshotRoutes(deps.snapshot),
    ...lifecycleRoutes(deps.lifecycle),
    '/kv': scanRoutes(kvDeps),
    '/kv/:key': keyRoutes(kvDeps),
    '/batch': batchRoutes(kvDeps),
  }
  const isAuthorized = deps.token === undefined || deps.token === '' ? undefined : bearerChecker(deps.token)
  const refused = refusalReporter(metrics, log)

  const inFlight = new Set<ServerResponse>()
  /**
   * Pipelined requests (HTTP/1.1) run one at a time per socket, each once the answer before it
   * has been written: node:http would run them all at once and buffer every answer until the
   * client reads (issue 17: one connection pipelining 1,000 GETs of a 1 MiB value and never
   * reading held 1 GiB, sixteen 4.2 GiB). While requests wait the socket is not read.
   */
  const pipelinedBySocket = new WeakMap<Duplex, (() => void)[]>()
  const pausedForPipelining = new WeakSet<Duplex>()
  /** Answers in progress per socket, so a parser error never writes into a started response. */
  const answersBySocket = new WeakMap<Duplex, Set<ServerResponse>>()
  let paused = false
  let closing: Promise<void> | undefined
  let onDrained: (() => void) | undefined
  // The pipelined binary protocol on the same port (docs/client-protocol.md), over the same KvService.
  const streams = createStreamServer({
    kv: deps.kv,
    linearizable: deps.linearizable,
    limits,
    streamLimits: { ...streamLimitsFor(limits), ...deps.streamLimits },
    metrics,
    log,
    refused,
    isAuthorized,
    ...(deps.watches === undefined ? {} : { watches: deps.watches }),
    refusal: () => paused || inFlight.size + streams.inFlight >= limits.maxInFlightRequests
      ? new UnavailableError('this node has too many requests in flight; retry shortly')
      : undefined,
  })

  /** Resolves once no request is in flight, or after `timeoutMs`. */
  function drained(timeoutMs: number): Promise<void> {
    if (inFlight.size === 0) return Promise.resolve()
    return new Promise<void>(resolve => {
      const timer = setTimeout(resolve, timeoutMs)
      onDrained = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  const options: http.ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    requestTimeout: limits.requestTimeoutMs,
    // A connection that sends nothing is closed after idleTimeoutMs: node:http checks these
    // deadlines every connectionsCheckingInterval (30 s by default, which made a 5 s deadline
    // 35 s in effect, issue 17).
    headersTimeout: Math.min(limits.idleTimeoutMs, limits.requestTimeoutMs),
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    // The Host header means nothing to this API; without this Node answers a bare, non-JSON 400.
    requireHostHeader: false,
  }
  const tls = deps.tls
  const server = tls === undefined
    ? http.createServer(options)
    // A stalled handshake holds a socket like an idle connection does, and gets the same deadline.
    : https.createServer({ ...options, ...tlsServerOptions(tls), handshakeTimeout: options.headersTimeout })
  // A reload (SIGHUP) swaps the certificate for new handshakes; open connections keep theirs.
  const stopFollowingTls = tls === undefined
    ? () => {}
    : tls.material.onChange(material => {
      ;(server as https.Server).setSecureContext(secureContextOptions(tls, material))
      log.info({ mode: tls.mode }, 'client API serves the reloaded TLS certificate to new connections')
    })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, false))
  // Listening for checkContinue stops Node from sending `100 Continue` by itself: a body refused
  // by its Content-Length (413) is then never sent at all.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, true))
  server.on('clientError', clientErrorHandler({
    metrics,
    log,
    maxHeaderBytes: limits.maxHeaderBytes,
    isAnswering: socket => [...answersBySocket.get(socket) ?? []].some(res => res.headersSent),
  }))
  server.on('tlsClientError', handshakeFailureHandler(metrics, log))
  server.on('upgrade', streams.upgrade)
  // CONNECT is not for this API; without a listener node:http would close the socket unanswered.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    metrics.httpClientErrors.inc({ code: 'connect' })
    log.debug({ target: req.url?.slice(0, 200) }, 'CONNECT refused')
    const body = JSON.stringify({ error: 'CONNECT is not supported: this is the hearsay client API, not a proxy', allow: 'GET, HEAD, PUT, DELETE, POST' })
    socket.on('error', () => {})
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nallow: GET, HEAD, PUT, DELETE, POST\r\nconnection: close\r\n\r\n${body}`)
    setTimeout(() => socket.destroy(), REFUSED_BODY_LINGER_MS).unref()
  })
  // An Expect other than 100-continue: node:http would answer a bare, empty 417.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    metrics.httpClientErrors.inc({ code: 'expectation' })
    res.setHeader('connection', 'close')
    sendJson(res, 417, { error: `Expect: ${String(req.headers.expect).slice(0, 100)} is not supported; send Expect: 100-continue or no Expect header` })
  })
  capConnectionsPerAddress(server, limits.maxConnectionsPerAddress, (socket, address, open) => {
    refused('api_connections_per_address', { address, open, maxConnectionsPerAddress: limits.maxConnectionsPerAddress })
    // Plain HTTP can still be told why; a TLS socket has not even shaken hands.
    if (tls === undefined) {
      const body = JSON.stringify({ error: `this node already has ${open} connections from ${address}, its limit per client address; reuse connections or retry later`, maxConnectionsPerAddress: limits.maxConnectionsPerAddress })
      socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`)
    }
  })
  // Accept failures (e.g. EMFILE) are emitted here once it listens (listenOn reports a failure to
  // listen); without a listener they would crash the daemon.
  const logServerError = (err: Error): void => { log.error({ err }, 'client API server error') }

  function onRequest(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const startedNs = process.hrtime.bigint()
    const method = req.method !== undefined && METHOD_LABELS.has(req.method) ? req.method : 'other'
    let route: string = UNMATCHED_ROUTE
    const socket = req.socket
    inFlight.add(res)
    const answers = answersBySocket.get(socket) ?? new Set<ServerResponse>()
    answersBySocket.set(socket, answers.add(res))
    if (closing !== undefined) res.setHeader('connection', 'close')

    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9
      metrics.httpRequests.inc({ route, method, status: String(res.statusCode) })
      metrics.httpRequestDuration.observe({ route, method }, seconds)
      if (route === '/kv/:key' || route === '/kv' || route === '/batch') deps.onDataRequest?.(seconds * 1000)
    })
    res.once('close', () => {
      inFlight.delete(res)
      answers.delete(res)
      if (inFlight.size === 0) onDrained?.()
      runNextPipelined(socket)
    })

    let continued = false
    const ctxBase = {
      req,
      res,
      detach: () => {
        if (inFlight.delete(res) && inFlight.size === 0) onDrained?.()
      },
      readBody: (maxBytes: number, what: string) => readBody(req, maxBytes, what, () => {
        if (expectsContinue && !continued) {
          continued = true
          res.writeContinue()
        }
      }),
    }
    const dispatch = async (): Promise<void> => {
      if (closing !== undefined) throw new UnavailableError('this node is shutting down; retry on another node', { nodeState: 'leaving' })
      if (paused || inFlight.size + streams.inFlight > limits.maxInFlightRequests) throw new UnavailableError('this node has too many requests in flight; retry shortly')
      const { path, rawQuery } = splitTarget(req.url ?? '/')
      const match = matchPath(path)
      if (match === undefined) throw new NotFoundError(`no endpoint at ${JSON.stringify(path)}; see GET / for this node`, { path })
      route = match.template
      if (isAuthorized !== undefined && route !== '/health' && !DASHBOARD_PUBLIC_ROUTES.has(route) && !isAuthorized(req.headers.authorization)) {
        throw new UnauthorizedError('missing or wrong bearer token; send "Authorization: Bearer <token>"')
      }
      const handlers = routes[match.template]
      const handler = handlerFor(handlers, req.method)
      if (handler === undefined) {
        throw new MethodNotAllowedError(`${String(req.method)} is not allowed on ${route}`, { allow: allowedMethods(handlers) })
      }
      const ctx: RequestContext = { ...ctxBase, rawQuery, rawKey: match.rawKey }
      await handler(ctx)
    }
    const run = (): void => {
      dispatch().catch(err => {
        try {
          answerError(err, req, res, route)
        } catch (failure) {
          // Last line of defence (e.g. error details JSON cannot encode): never an unhandled rejection.
          log.error({ err: failure, route }, 'could not send an error answer')
          res.destroy()
        }
      })
    }
    const waiting = pipelinedBySocket.get(socket)
    if (waiting === undefined) {
      pipelinedBySocket.set(socket, [])
      run()
    } else {
      waiting.push(run)
      if (!socket.isPaused()) {
        socket.pause()
        pausedForPipelining.add(socket)
      }
    }
  }

  /** The answer before it on `socket` is done: run the next pipelined request, or read on. */
  function runNextPipelined(socket: Duplex): void {
    const waiting = pipelinedBySocket.get(socket)
    if (waiting === undefined) return
    const next = waiting.shift()
    if (next !== undefined) return next()
    pipelinedBySocket.delete(socket)
    if (pausedForPipelining.delete(socket)) socket.resume()
  }

  function answerError(err: unknown, req: IncomingMessage, res: ServerResponse, route: string): void {
    if (err instanceof ClientGoneError) {
      log.debug({ method: req.method, route }, err.message)
      return
    }
    const answer = errorAnswer(err)
    if (answer.unexpected) log.error({ err, method: req.method, route }, 'request failed with an unexpected error')
    if (res.headersSent) {
      // The answer had started when the error hit: cut it off rather than leave the client waiting.
      if (!res.writableEnded) res.destroy()
      return
    }
    const headers: Record<string, string> = { ...answer.headers }
    if (answer.status === 413 && !req.complete) {
      // The rest of the oversized body is still on the wire: stop here, don't read it.
      headers.connection = 'close'
      res.once('finish', () => {
        const linger = setTimeout(() => req.socket.destroy(), REFUSED_BODY_LINGER_MS).unref()
        req.socket.once('close', () => clearTimeout(linger))
      })
    }
    sendJson(res, answer.status, answer.body, headers)
  }

  return {
    listen(host, port) {
      return listenOn(server, host, port, 'api.port').then(() => {
        server.on('error', logServerError)
        const address = server.address() as AddressInfo
        return { host: address.address, port: address.port }
      })
    },

    close(graceMs) {
      closing ??= (async () => {
        stopFollowingTls()
        const closed = new Promise<void>(resolve => server.close(() => resolve()))
        server.closeIdleConnections()
        // Dashboard event streams never end by themselves.
        dashboard.endStreams()
        // Keep-alive would hold a connection open past its last answer; end each one with it.
        for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close')
        // Upgraded sockets keep server.close() waiting until the stream connections are gone.
        await Promise.all([drained(graceMs), streams.close(graceMs)])
        server.closeAllConnections()
        // Destroyed sockets close their responses within a tick or two; the bound is a backstop.
        await drained(CLOSE_SETTLE_MS)
        await closed
      })()
      return closing
    },

    get inFlight() {
      return inFlight.size + streams.inFlight
    },

    pauseAccepting() {
      paused = true
    },

    resumeAccepting() {
      paused = false
    },
  }
}

function handlerFor(handlers: RouteHandlers, method: string | undefined): Handler | undefined {
  if (method === 'HEAD') return handlers.GET
  if (method === 'GET' || method === 'PUT' || method === 'DELETE' || method === 'POST') return handlers[method]
  return undefined
}
