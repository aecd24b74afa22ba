import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { Metrics } from '../metrics/metrics.js'

/**
 * Answers requests Node's HTTP parser refuses before any route runs: an oversized request line
 * or headers (a 100 KB key), malformed syntax, bad chunked encoding, a request that took too
 * long to arrive. The answer is raw HTTP/1.1 with the same JSON error shape as every route.
 */

/** Time the client gets to read the error before the socket is destroyed. */
const CLIENT_ERROR_LINGER_MS = 1000

export interface ClientErrorDeps {
  readonly metrics: Metrics
  readonly log: Logger
  readonly maxHeaderBytes: number
  /** True while a response is being written on `socket`: a raw answer would corrupt it. */
  isAnswering(socket: Duplex): boolean
}

export function clientErrorHandler(deps: ClientErrorDeps): (err: Error & { code?: string }, socket: Duplex) => void {
  /** Sockets already answered: the parser reports its error again for every later chunk. */
  const refused = new WeakSet<Duplex>()
  return (err, socket) => {
    if (refused.has(socket)) return
    refused.add(socket)
    const code = err.code ?? 'unknown'
    deps.metrics.httpClientErrors.inc({ code })
    // A reset is the client leaving, not a malformed request: there is nobody to answer.
    if (code === 'ECONNRESET' || !socket.writable || deps.isAnswering(socket)) {
      socket.destroy()
      return
    }
    const { status, error } = describe(code, deps.maxHeaderBytes)
    deps.log.debug({ code, status }, 'refused a malformed client request')
    const body = JSON.stringify({ error, code })
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`
      + 'content-type: application/json; charset=utf-8\r\n'
      + `content-length: ${Buffer.byteLength(body)}\r\n`
      + 'connection: close\r\n\r\n'
      + body,
    )
    // end() lets the answer drain; the destroy bounds how long an unread upload can hold the socket.
    const linger = setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref()
    socket.once('close', () => clearTimeout(linger))
  }
}

function describe(code: string, maxHeaderBytes: number): { status: number; error: string } {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return { status: 431, error: `request line and headers exceed ${maxHeaderBytes} bytes; keys must be short enough to fit in the URL` }
  }
  if (code === 'HPE_INVALID_URL') {
    return { status: 400, error: 'the request URL has characters that must be percent-encoded (such as non-ASCII); encode keys with encodeURIComponent or equivalent' }
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, error: 'the request was not received completely in time' }
  return { status: 400, error: 'malformed HTTP request' }
}
