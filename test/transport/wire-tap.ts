import { once } from 'node:events'
import net from 'node:net'

/**
 * A TCP proxy to 127.0.0.1:`targetPort` that keeps every byte it forwards, both ways: a passive
 * listener on the wire, for tests that check what it could read.
 */
export interface WireTap {
  readonly port: number
  /** Everything forwarded so far, both directions. */
  bytes(): Buffer
  close(): Promise<void>
}

/** Most bytes a tap keeps; a test that needs more is capturing more than it should. */
const MAX_TAP_BYTES = 64 * 1024 * 1024

export async function startWireTap(targetPort: number): Promise<WireTap> {
  const chunks: Buffer[] = []
  let kept = 0
  const keep = (chunk: Buffer): void => {
    if (kept + chunk.byteLength > MAX_TAP_BYTES) throw new Error(`the wire tap holds more than ${MAX_TAP_BYTES} bytes`)
    kept += chunk.byteLength
    chunks.push(chunk)
  }
  const sockets = new Set<net.Socket>()
  const server = net.createServer(client => {
    const upstream = net.connect(targetPort, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => { client.destroy(); upstream.destroy() })
      socket.on('close', () => { sockets.delete(socket); client.destroy(); upstream.destroy() })
    }
    client.on('data', (chunk: Buffer) => { keep(chunk); upstream.write(chunk) })
    upstream.on('data', (chunk: Buffer) => { keep(chunk); client.write(chunk) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    bytes: () => Buffer.concat(chunks),
    close: () => new Promise<void>(resolve => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    }),
  }
}
