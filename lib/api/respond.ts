import type { ServerResponse } from 'node:http'

/** Headers every API answer carries: answers describe live cluster state, never cache them. */
const COMMON_HEADERS = { 'cache-control': 'no-store' } as const

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  sendBytes(res, status, Buffer.from(JSON.stringify(body), 'utf8'), { 'content-type': 'application/json; charset=utf-8', ...headers })
}

/** Sends a complete answer; a no-op when the answer already started or the client is gone. */
export function sendBytes(res: ServerResponse, status: number, body: Uint8Array | string, headers: Readonly<Record<string, string>>): void {
  if (res.headersSent || res.destroyed) return
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
  res.writeHead(status, { ...COMMON_HEADERS, ...headers, 'content-length': String(bytes.byteLength) })
  // HEAD answers carry the GET headers; node:http drops the body for them.
  res.end(bytes)
}
