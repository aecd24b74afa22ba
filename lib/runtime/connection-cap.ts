import type { Server, Socket } from 'node:net'

/**
 * Per-client-address connection caps for a listening server (issue 17: 21,000 idle connections
 * from one host filled the daemon's descriptor limit and new clients were closed unanswered).
 * Connections are counted by remote address as the kernel hands them over; one past the cap is
 * handed to `refuse` (which answers if it can and destroys the socket) and never reaches the
 * server's handlers.
 */

export interface ConnectionCap {
  /** Open connections from `address` now. */
  connectionsFrom(address: string): number
}

export function capConnectionsPerAddress(server: Server, maxPerAddress: number, refuse: (socket: Socket, address: string, open: number) => void): ConnectionCap {
  if (!Number.isSafeInteger(maxPerAddress) || maxPerAddress < 1) throw new RangeError(`maxPerAddress must be a positive integer, got ${maxPerAddress}`)
  const open = new Map<string, number>()
  // prependListener: the count is kept before node:http (or ws) sees the socket at all.
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '?'
    const count = (open.get(address) ?? 0) + 1
    if (count > maxPerAddress) {
      socket.on('error', () => {})
      refuse(socket, address, count - 1)
      // node:http would otherwise parse what arrives before the destroy takes effect.
      socket.pause()
      if (!socket.destroyed) setImmediate(() => socket.destroy())
      return
    }
    open.set(address, count)
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1
      if (left <= 0) open.delete(address)
      else open.set(address, left)
    })
  })
  return { connectionsFrom: address => open.get(address) ?? 0 }
}
