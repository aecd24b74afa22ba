import type { ServerResponse } from 'node:http'
import { STREAM_ADVERT_HEADER, STREAM_PATH } from './binary/protocol.js'

/**
 * Headers every API answer carries: answers describe live cluster state, never cache them; and
 * the stream protocol's path, which is how a client learns it may switch to it.
 */
export const COMMON_HEADERS = { 'cache-control': 'no-store', [STREAM_ADVERT_HEADER]: STREAM_PATH } as const

/**
 * Bodies up to this size are handed to node:http as a latin1 string. node:http then writes the
 * headers and the body in one `write` instead of a two-buffer `writev`, which measured as the
 * single largest cost of a small answer (docs/benchmarks.md). latin1 maps bytes 1:1, so any
 * value bytes survive; larger bodies are not worth the copy.
 */
const SINGLE_WRITE_MAX_BYTES = 16 * 1024

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  sendBytes(res, status, JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8', ...headers })
}

/** Sends a complete answer; a no-op when the answer already started or the client is gone. */
export function sendBytes(res: ServerResponse, status: number, body: Uint8Array | string, headers: Readonly<Record<string, string>>): void {
  if (res.headersSent || res.destroyed) return
  const length = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength
  res.writeHead(status, { ...COMMON_HEADERS, ...headers, 'content-length': String(length) })
  // HEAD answers carry the GET headers; node:http drops the body for them.
  if (typeof body === 'string') res.end(body, 'utf8')
  else if (length <= SINGLE_WRITE_MAX_BYTES) res.end(Buffer.from(body.buffer, body.byteOffset, length).toString('latin1'), 'latin1')
  else res.end(body)
}
