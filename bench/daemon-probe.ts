import { get } from 'node:http'
import { sampleProcess } from './compare/proc-stats.js'

/** Start-up probes the start-up and rebuild benches share. */

/** True once the daemon on `port` answers GET /health with 200. */
export function healthOk(port: number): Promise<boolean> {
  return new Promise(done => {
    const request = get({ host: '127.0.0.1', port, path: '/health', agent: false }, response => {
      response.resume()
      done(response.statusCode === 200)
    })
    request.on('error', () => done(false))
  })
}

/**
 * CPU milliseconds (user + system) a process has used so far, from /proc (Linux): on a shared
 * machine its wall time says as much about the neighbours' load as about the daemon.
 */
export function processCpuMs(pid: number): number {
  return sampleProcess(pid).cpuSeconds * 1000
}
