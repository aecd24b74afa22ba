import { once } from 'node:events'
import net from 'node:net'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import type { MalformedReason } from '../../lib/codec/codec.js'
import type { RefuseCode } from '../../lib/codec/transport-frames.js'
import type { DropReason, LinkCloseReason, TransportCounters } from '../../lib/transport/counters.js'
import type { TransportLimits } from '../../lib/transport/limits.js'
import type { TlsFailureReason } from '../../lib/transport/tls-failure.js'
import type { PeerIdentity } from '../../lib/transport/transport.js'
import { WsTransport, type WsTransportOptions } from '../../lib/transport/ws-transport.js'
import { identity, testRegistry } from './fixtures.js'
import { systemClock } from '../../lib/runtime/clock.js'
import { createRandom } from '../../lib/runtime/random.js'

/** Small limits so tests exercise the bounds cheaply; timings stay generous for a busy machine. */
export const TEST_LIMITS: Partial<TransportLimits> = {
  maxFrameBytes: 64 * 1024,
  maxHandshakeMessageBytes: 2048,
  handshakeTimeoutMs: 2000,
  reconnectBaseMs: 20,
  reconnectCapMs: 200,
  closeTimeoutMs: 200,
}

/** Log lines as parsed objects, and the raw text for pattern matching. */
export class LogCapture {
  readonly lines: Record<string, unknown>[] = []
  readonly logger: Logger

  constructor() {
    const stream = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>)
        done()
      },
    })
    this.logger = pino({ level: 'debug' }, stream)
  }

  /** Every line as its field values joined by spaces, so patterns need no JSON escaping. */
  text(): string {
    return this.lines.map(line => Object.values(line).map(String).join(' ')).join('\n')
  }
}

export class CountingCounters implements TransportCounters {
  readonly opened: string[] = []
  readonly closed: LinkCloseReason[] = []
  readonly refusals: string[] = []
  readonly malformedReasons: MalformedReason[] = []
  readonly drops: DropReason[] = []
  readonly tlsFailures: TlsFailureReason[] = []
  /** Bytes by `${direction}:${type}`. */
  readonly bytes = new Map<string, number>()
  linkOpened(direction: 'inbound' | 'outbound'): void { this.opened.push(direction) }
  linkClosed(reason: LinkCloseReason): void { this.closed.push(reason) }
  refused(by: 'local' | 'remote', code: RefuseCode): void { this.refusals.push(`${by}:${code}`) }
  malformed(reason: MalformedReason): void { this.malformedReasons.push(reason) }
  dropped(reason: DropReason): void { this.drops.push(reason) }
  tlsFailure(reason: TlsFailureReason): void { this.tlsFailures.push(reason) }
  frameBytes(direction: 'sent' | 'received', type: string, bytes: number): void {
    const key = `${direction}:${type}`
    this.bytes.set(key, (this.bytes.get(key) ?? 0) + bytes)
  }
}

export interface TestNode {
  readonly transport: WsTransport
  readonly identity: PeerIdentity
  readonly port: number
  readonly log: LogCapture
  readonly counters: CountingCounters
  readonly connected: PeerIdentity[]
  readonly disconnected: PeerIdentity[]
}

/** A loopback port that was free a moment ago (the OS picks it; a tiny race accepted in tests). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

export async function startNode(index: number, options: Partial<WsTransportOptions> & { port?: number } = {}): Promise<TestNode> {
  const port = options.port ?? await freePort()
  const self = identity(index, port)
  const log = new LogCapture()
  const counters = new CountingCounters()
  const connected: PeerIdentity[] = []
  const disconnected: PeerIdentity[] = []
  const transport = new WsTransport({
    bindHost: '127.0.0.1',
    bindPort: port,
    local: self,
    clusterName: 'test',
    log: log.logger,
    counters,
    frames: testRegistry,
    onPeerConnected: peer => connected.push(peer),
    onPeerDisconnected: peer => disconnected.push(peer),
    ...options,
    clock: options.clock ?? systemClock,
    random: options.random ?? createRandom(index + 1),
    limits: { ...TEST_LIMITS, ...options.limits },
  })
  const bound = await transport.start()
  return { transport, identity: self, port: bound, log, counters, connected, disconnected }
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (condition()) return true
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  return condition()
}
