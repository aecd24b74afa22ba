import { once } from 'node:events'
import net from 'node:net'

/**
 * `count` distinct loopback ports that were free a moment ago. All listeners are held open
 * together so the OS cannot hand out the same port twice; the short race after closing them is
 * accepted (the servers fail to bind loudly if it is ever lost).
 */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers: net.Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer()
      servers.push(server)
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
    }
    return servers.map(server => (server.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(servers.map(server => new Promise(resolve => server.close(resolve))))
  }
}
