import type { Server } from 'node:net'

/** The config setting of a port a daemon listens on. */
export type PortSetting = 'api.port' | 'peer.port'

const PORT_NAMES: Readonly<Record<PortSetting, string>> = { 'api.port': 'API port', 'peer.port': 'peer port' }

/**
 * Listens on host:port, or rejects with one line an operator can act on: a taken port names the
 * setting to change. The server's own 'error' handlers are the caller's to add once it listens, so
 * a failure to listen is reported once, by the daemon's fatal start-up error.
 */
export function listenOn(server: Server, host: string, port: number, setting: PortSetting): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error & { code?: string }): void => {
      reject(new Error(error.code === 'EADDRINUSE'
        ? `${setting.replace('.', ' ')} ${port} on ${host} is already in use; choose another ${setting}`
        : `cannot listen on the ${PORT_NAMES[setting]} ${host}:${port}: ${error.message}`))
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
}
