import net from 'node:net'

/**
 * A passive listener on loopback: a TCP proxy that forwards every byte between its clients and
 * one target unchanged and keeps a copy, as a capture on the LAN would see them. Tests point a
 * client (or a peer) at the tap instead of the target and then ask whether a value or a token
 * crossed the wire readable. Checking the same bytes with TLS off first proves the tap sees
 * them at all.
 */

/** Captured bytes beyond this are dropped (and counted): a test's traffic is far smaller. */
export const MAX_CAPTURED_BYTES = 64 * 1024 * 1024

export interface WireTap {
  readonly host: string
  readonly port: number
  /** Everything that crossed the tap so far, both directions, in arrival order. */
  captured(): Buffer
  /** True when `needle` appears in the captured bytes (a copy split across two chunks included). */
  saw(needle: string | Uint8Array): boolean
  /** Connections the tap has forwarded. */
  readonly connections: number
  close(): Promise<void>
}

export async function startWireTap(target: { readonly host: string; readonly port: number }): Promise<WireTap> {
  const chunks: Buffer[] = []
  let capturedBytes = 0
  let connections = 0
  const sockets = new Set<net.Socket>()
  const keep = (chunk: Buffer): void => {
    if (capturedBytes + chunk.byteLength > MAX_CAPTURED_BYTES) return
    chunks.push(Buffer.from(chunk))
    capturedBytes += chunk.byteLength
  }
  const server = net.createServer(client => {
    connections++
    const upstream = net.connect(target.port, target.host)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      // A reset on one side ends the other; neither may crash the test.
      socket.on('error', () => { client.destroy(); upstream.destroy() })
    }
    client.on('data', (chunk: Buffer) => { keep(chunk); upstream.write(chunk) })
    upstream.on('data', (chunk: Buffer) => { keep(chunk); client.write(chunk) })
    client.on('end', () => upstream.end())
    upstream.on('end', () => client.end())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as net.AddressInfo
  return {
    host: '127.0.0.1',
    port,
    captured: () => Buffer.concat(chunks, capturedBytes),
    saw(needle) {
      return Buffer.concat(chunks, capturedBytes).includes(Buffer.from(needle))
    },
    get connections() {
      return connections
    },
    close() {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
}
