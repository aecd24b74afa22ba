import http from 'node:http'
import https from 'node:https'
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
  #http: http.Agent | undefined
  #https: https.Agent | undefined

  constructor(maxSockets: number) {
    this.#maxSockets = maxSockets
  }

  for(node: NodeUrl): http.Agent {
    if (node.startsWith('https:')) return this.#https ??= new https.Agent({ keepAlive: true, maxSockets: this.#maxSockets })
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
      finish(new NodeUnreachableError(`${node}: ${describeNetworkError(err)}`, stale, !stale && !NEVER_CONNECTED_CODES.has(err.code ?? '')))
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
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused (ECONNREFUSED)'
    case 'ECONNRESET': return 'connection reset (ECONNRESET)'
    case 'ENOTFOUND': return 'host not found (ENOTFOUND)'
    case 'EHOSTUNREACH': return 'host unreachable (EHOSTUNREACH)'
    case 'ETIMEDOUT': return 'connection timed out (ETIMEDOUT)'
    default: return err.code === undefined ? err.message : `${err.message} (${err.code})`
  }
}
