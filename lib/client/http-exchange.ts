import http from 'node:http'
import https from 'node:https'
import type { ClientTlsOptions } from './client.js'
import type { NodeUrl } from './node-urls.js'
import { InvalidReplyError } from './errors.js'

/** One HTTP request as the client builds it; `path` includes the query string. */
export interface HttpRequest {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE'
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: Uint8Array
}

export interface HttpAnswer {
  /** The node that answered. */
  readonly node: NodeUrl
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
}

export interface ExchangeLimits {
  /** Deadline for the whole exchange: connect, send, and read the full answer. */
  readonly timeoutMs: number
  /** A larger answer is cut off and reported; no hearsay answer is legitimately this big. */
  readonly maxResponseBytes: number
}

/** Network errors that mean no connection was made, so the request cannot have arrived. */
const NEVER_CONNECTED_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])

/**
 * The node did not answer (refused, reset, unreachable, timed out). Only this error makes the
 * client move on to the next node; an HTTP answer of any status is the result.
 */
export class NodeUnreachableError extends Error {
  /**
   * The request failed on a kept-alive socket before any answer: the server most likely closed
   * it while idle, which says nothing about the node, so one retry on a fresh socket is due.
   */
  readonly staleSocket: boolean
  /**
   * The request may have reached the node (a timeout, a connection lost after connecting): a
   * change must not be sent again elsewhere, it may already be applied. False only when the
   * connection was never made.
   */
  readonly mayHaveArrived: boolean

  constructor(message: string, staleSocket: boolean, mayHaveArrived = true) {
    super(message)
    this.name = 'NodeUnreachableError'
    this.staleSocket = staleSocket
    this.mayHaveArrived = mayHaveArrived
  }
}

/** Keep-alive agents shared by every request of one client, one per scheme. */
export class Agents {
  readonly #maxSockets: number
  readonly #tls: ClientTlsOptions
  #http: http.Agent | undefined
  #https: https.Agent | undefined

  constructor(maxSockets: number, tls: ClientTlsOptions = {}) {
    this.#maxSockets = maxSockets
    this.#tls = tls
  }

  for(node: NodeUrl): http.Agent {
    // The agent keeps TLS sessions for resumption, so reconnects skip the full handshake.
    if (node.startsWith('https:')) return this.#https ??= new https.Agent({ keepAlive: true, maxSockets: this.#maxSockets, ...this.#tls })
    return this.#http ??= new http.Agent({ keepAlive: true, maxSockets: this.#maxSockets })
  }

  destroy(): void {
    this.#http?.destroy()
    this.#https?.destroy()
  }
}

const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE'])

/** Sends one request to one node and reads the whole answer, within the limits. */
export function exchange(agents: Agents, node: NodeUrl, request: HttpRequest, limits: ExchangeLimits): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const url = new URL(node + request.path)
    const send = url.protocol === 'https:' ? https.request : http.request
    const headers: Record<string, string | number> = { ...request.headers }
    if (request.body !== undefined) headers['content-length'] = request.body.byteLength
    let settled = false
    let answered = false

    const outgoing = send(url, { method: request.method, agent: agents.for(node), headers }, response => {
      answered = true
      const chunks: Buffer[] = []
      let receivedBytes = 0
      response.on('data', (chunk: Buffer) => {
        receivedBytes += chunk.byteLength
        if (receivedBytes > limits.maxResponseBytes) {
          finish(new InvalidReplyError(node, `an answer larger than ${limits.maxResponseBytes} bytes`))
          return
        }
        chunks.push(chunk)
      })
      response.on('end', () => finish(undefined, {
        node,
        status: response.statusCode ?? 0,
        headers: response.headers,
        body: Buffer.concat(chunks, receivedBytes),
      }))
      response.on('close', () => {
        if (!response.complete) finish(new NodeUnreachableError(`${node}: connection closed in the middle of the answer`, false))
      })
    })

    const timer = setTimeout(() => {
      finish(new NodeUnreachableError(`${node}: no answer within ${limits.timeoutMs} ms`, false))
    }, limits.timeoutMs)

    outgoing.on('error', (err: NodeJS.ErrnoException) => {
      const stale = !answered && outgoing.reusedSocket && STALE_SOCKET_CODES.has(err.code ?? '')
      // An HTTPS port hangs up on a plain request without a word; say what it probably was.
      const hint = !answered && !outgoing.reusedSocket && url.protocol === 'http:' && err.code === 'ECONNRESET'
        ? '; if the node serves HTTPS (tls.api on), use an https:// URL'
        : ''
      finish(new NodeUnreachableError(`${node}: ${describeNetworkError(err)}${hint}`, stale, !stale && !NEVER_CONNECTED_CODES.has(err.code ?? '')))
    })

    function finish(error: Error | undefined, answer?: HttpAnswer): void {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error !== undefined) {
        outgoing.destroy()
        reject(error)
      } else {
        resolve(answer as HttpAnswer)
      }
    }

    outgoing.end(request.body)
  })
}

export function describeNetworkError(err: NodeJS.ErrnoException): string {
  const tls = describeTlsError(err)
  if (tls !== undefined) return tls
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused (ECONNREFUSED)'
    case 'ECONNRESET': return 'connection reset (ECONNRESET)'
    case 'ENOTFOUND': return 'host not found (ENOTFOUND)'
    case 'EHOSTUNREACH': return 'host unreachable (EHOSTUNREACH)'
    case 'ETIMEDOUT': return 'connection timed out (ETIMEDOUT)'
    default: return err.code === undefined ? err.message : `${err.message} (${err.code})`
  }
}

/** The node's certificate does not chain to a CA the client trusts. */
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED',
])

/**
 * A failed TLS handshake in words that say what to do: the flags named are the CLI's, and the
 * library's ClientTlsOptions carry the same three files (ca, cert, key).
 */
function describeTlsError(err: NodeJS.ErrnoException): string | undefined {
  const code = err.code ?? ''
  if (UNTRUSTED_CERTIFICATE_CODES.has(code)) {
    return `certificate not trusted: the node's certificate does not chain to a CA this client trusts (${code}); pass --ca FILE (or HEARSAY_CA) with the cluster's CA certificate`
  }
  if (code === 'CERT_HAS_EXPIRED') return `the node's certificate has expired (${code}); the node needs a new one (hearsay tls cert create, then kill -HUP)`
  if (code === 'CERT_NOT_YET_VALID') return `the node's certificate is not valid yet (${code}); check the clocks of this machine and the node`
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the node's certificate does not name the host in the URL (${err.message}); use a name or IP the certificate lists, or reissue it with --ip/--dns`
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return `the node refused the TLS handshake: it requires a client certificate (tls.api mutual); pass --cert FILE --key FILE (or HEARSAY_CERT/HEARSAY_KEY) (${code})`
  }
  // TLS 1.2 says only "handshake failure"; a missing client certificate is the usual cause here.
  if (/alert handshake failure/.test(err.message)) {
    return `the node refused the TLS handshake, most likely because it requires a client certificate (tls.api mutual); pass --cert FILE --key FILE (or HEARSAY_CERT/HEARSAY_KEY) (${code})`
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' || code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' || code === 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED') {
    return `the node refused this client's certificate (${code}); use a certificate issued by the cluster's CA with hearsay tls cert create --client`
  }
  if (/before secure TLS connection was established/.test(err.message)) {
    return `the node closed the connection during the TLS handshake (${code}); it may not trust this client's certificate (--cert), or may require one`
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/.test(err.message)) {
    return `the node does not speak TLS on this port (${code}); use an http:// URL, or turn tls.api on at the node`
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' || code === 'ERR_SSL_UNSUPPORTED_PROTOCOL') {
    return `the node and this client share no TLS version (${code}); the node's tls.minVersion may be above what this client offers`
  }
  return undefined
}
