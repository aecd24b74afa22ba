/**
 * A user-space delaying TCP proxy, for link delay without `sch_netem` (which this kernel lacks).
 * One runs inside each node's namespace on the peer address the node advertises, forwarding each
 * connection to the daemon's own peer port on loopback. Every peer link to the node passes it, so
 * a link between a slow node and any other is delayed whichever end opened it: chunks in both
 * directions of a connection are held for delayMs ± jitterMs when this node or the connecting one
 * is in the slow set. Chunks of one direction keep their order, as on a real link.
 *
 *   node delay-proxy.js LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT OWN_ADDRESS
 *   stdin, one JSON line per change: {"slow":["10.214.38.3"],"delayMs":100,"jitterMs":50};
 *   it answers "listening" once bound, and exits when stdin closes.
 */
import net from 'node:net'
import { createInterface } from 'node:readline'

/** Most bytes held back per direction of one connection before reading from it pauses. */
const MAX_HELD_BYTES = 8 * 1024 * 1024

let slow = new Set<string>()
let delayMs = 0
let jitterMs = 0

function pipeDelayed(from: net.Socket, to: net.Socket, isSlow: () => boolean): void {
  let lastDueMs = 0
  let heldBytes = 0
  from.on('data', (chunk: Buffer) => {
    const holdMs = isSlow() ? Math.max(0, delayMs + (Math.random() * 2 - 1) * jitterMs) : 0
    const dueMs = Math.max(Date.now() + holdMs, lastDueMs)
    lastDueMs = dueMs
    heldBytes += chunk.length
    if (heldBytes > MAX_HELD_BYTES) from.pause()
    setTimeout(() => {
      heldBytes -= chunk.length
      if (heldBytes <= MAX_HELD_BYTES) from.resume()
      if (!to.destroyed) to.write(chunk)
    }, dueMs - Date.now())
  })
  // The end of a stream travels after the data ahead of it.
  from.on('end', () => setTimeout(() => to.end(), Math.max(0, lastDueMs - Date.now())))
  from.on('error', () => to.destroy())
}

const [listenHost, listenPort, targetHost, targetPort, ownAddress] = process.argv.slice(2)
if (listenHost === undefined || listenPort === undefined || targetHost === undefined || targetPort === undefined || ownAddress === undefined) {
  process.stderr.write('usage: delay-proxy LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT OWN_ADDRESS\n')
  process.exit(2)
}

const server = net.createServer({ allowHalfOpen: true }, client => {
  const remote = client.remoteAddress ?? ''
  const isSlow = (): boolean => slow.has(ownAddress) || slow.has(remote)
  const upstream = net.connect({ port: Number(targetPort), host: targetHost, allowHalfOpen: true })
  client.setNoDelay(true)
  upstream.setNoDelay(true)
  pipeDelayed(client, upstream, isSlow)
  pipeDelayed(upstream, client, isSlow)
})
server.listen(Number(listenPort), listenHost, () => process.stdout.write('listening\n'))

createInterface({ input: process.stdin })
  .on('line', line => {
    const change = JSON.parse(line) as { slow?: string[]; delayMs?: number; jitterMs?: number }
    slow = new Set(change.slow ?? [...slow])
    delayMs = change.delayMs ?? delayMs
    jitterMs = change.jitterMs ?? jitterMs
  })
  .on('close', () => process.exit(0))
