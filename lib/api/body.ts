import type { IncomingMessage } from 'node:http'
import { PayloadTooLargeError } from '../errors.js'
import { ClientGoneError } from './errors.js'

/**
 * Reads a request body of at most `maxBytes`. A declared Content-Length above the limit is
 * refused before reading a byte; a body that grows past it while streaming (chunked) stops
 * being read at once, so an oversized upload never sits in memory. The caller answers 413 and
 * closes the connection, since the rest of the body is still on the wire. `beforeReading` runs
 * once the declared size is acceptable (to send `100 Continue`).
 */
export function readBody(req: IncomingMessage, maxBytes: number, what: string, beforeReading: () => void = () => {}): Promise<Buffer> {
  const tooLarge = () => new PayloadTooLargeError(`${what} is larger than the limit of ${maxBytes} bytes`, { maxBytes })
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.reject(tooLarge())
  beforeReading()

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let receivedBytes = 0
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onGone)
      req.off('error', onGone)
    }
    const onData = (chunk: Buffer) => {
      receivedBytes += chunk.byteLength
      if (receivedBytes > maxBytes) {
        cleanup()
        req.pause()
        reject(tooLarge())
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(Buffer.concat(chunks, receivedBytes))
    }
    const onGone = () => {
      cleanup()
      reject(new ClientGoneError())
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('close', onGone)
    req.on('error', onGone)
  })
}
