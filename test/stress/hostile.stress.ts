import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { Packr } from 'msgpackr'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { startCluster, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * Issue 17 against a real hearsayd: small, valid-looking inputs that used to take a node to
 * gigabytes of memory. Each case measures the daemon's resident memory (/proc/PID/status) before
 * and during the attack and checks that /health keeps answering within a second.
 */

const packr = new Packr({ useRecords: false })
const MIB = 1024 * 1024
/** Growth of the daemon's RSS the attacks below may cause (before the fix: 2 GiB and more). */
const MAX_RSS_GROWTH_BYTES = 400 * MIB
const HEALTH_DEADLINE_MS = 1000

/**
 * The daemon's resident set size now and at its peak, in bytes, and its anonymous part now
 * (without LMDB's memory-mapped file pages, which a read of many values touches: page cache the
 * kernel reclaims, not memory the node holds).
 */
function rss(daemon: Daemon): { nowBytes: number; peakBytes: number; anonBytes: number } {
  const status = readFileSync(`/proc/${daemon.process.pid}/status`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { nowBytes: field('VmRSS'), peakBytes: field('VmHWM'), anonBytes: field('RssAnon') }
}

async function healthMs(daemon: Daemon): Promise<number> {
  const started = Date.now()
  try {
    const res = await fetch(`${daemon.url}/health`, { signal: AbortSignal.timeout(5000) })
    await res.arrayBuffer()
  } catch { /* timed out: the elapsed time says so */ }
  return Date.now() - started
}

/** A stream connection that sends what it is given and never reads an answer. */
async function silentReader(daemon: Daemon): Promise<WebSocket> {
  const socket = new WebSocket(`${daemon.url.replace(/^http/, 'ws')}/v1/stream`)
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('unexpected-response', () => reject(new Error('upgrade refused')))
  })
  // ws reads its socket until paused; paused, the TCP window fills and the node's answers wait.
  socket.pause()
  return socket
}

/**
 * A raw WebSocket on /v1/stream that announces one binary message of `claimedBytes` and sends
 * only `sentBytes` of it: ws holds the partial message until it completes.
 */
async function partialMessage(daemon: Daemon, claimedBytes: number, sentBytes: number): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect(daemon.apiPort, '127.0.0.1')
  socket.on('error', () => {})
  const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
  await new Promise<void>(resolve => socket.once('connect', () => resolve()))
  socket.write(`GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  await new Promise<void>((resolve, reject) => socket.once('data', (chunk: Buffer) => chunk.toString().startsWith('HTTP/1.1 101') ? resolve() : reject(new Error(chunk.toString()))))
  // FIN + binary, masked, 64-bit length, mask key 0 (the payload goes as is).
  const header = Buffer.alloc(14)
  header[0] = 0x82
  header[1] = 0x80 | 127
  header.writeBigUInt64BE(BigInt(claimedBytes), 2)
  socket.write(header)
  await new Promise<void>(resolve => socket.write(Buffer.alloc(sentBytes, 1), () => resolve()))
  return { socket, closed }
}

async function metric(daemon: Daemon, line: string): Promise<number> {
  const text = await (await fetch(`${daemon.url}/metrics`)).text()
  return Number(text.split('\n').find(row => row.startsWith(line))?.split(' ').at(-1) ?? 0)
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

// Six daemons, hundreds of MiB moved: more than tap's default per-file timeout on a busy machine.
t.setTimeout(300_000)

/** A daemon holding a 1 MiB value at `big`, and its memory once the write has settled. */
async function daemonHoldingBigValue(t: Test): Promise<{ daemon: Daemon; before: ReturnType<typeof rss> }> {
  const daemon = await startDaemon()
  t.teardown(() => daemon.stop())
  const put = await fetch(`${daemon.url}/kv/big`, { method: 'PUT', body: Buffer.alloc(MIB, 7) })
  t.equal(put.status, 200)
  await sleep(500)
  return { daemon, before: rss(daemon) }
}

t.test('one stream connection asking 4 × 1,024 times for a 1 MiB value and never reading stays within its budget', async t => {
  const { daemon, before } = await daemonHoldingBigValue(t)

  const socket = await silentReader(daemon)
  t.teardown(() => socket.terminate())
  let id = 0
  for (let message = 0; message < 4; message++) {
    const frames = Array.from({ length: 1024 }, () => packr.pack([++id, 1, 'big']))
    socket.send(Buffer.concat(frames))
  }
  let slowestHealthMs = 0
  for (let i = 0; i < 8; i++) {
    await sleep(500)
    slowestHealthMs = Math.max(slowestHealthMs, await healthMs(daemon))
  }
  const during = rss(daemon)
  const growth = during.peakBytes - before.nowBytes
  t.comment(`RSS before ${(before.nowBytes / MIB).toFixed(0)} MiB, during ${(during.nowBytes / MIB).toFixed(0)} MiB, peak ${(during.peakBytes / MIB).toFixed(0)} MiB; slowest /health ${slowestHealthMs} ms`)
  t.ok(growth < MAX_RSS_GROWTH_BYTES, `RSS grew by ${(growth / MIB).toFixed(0)} MiB, less than ${MAX_RSS_GROWTH_BYTES / MIB} MiB`)
  t.ok(slowestHealthMs < HEALTH_DEADLINE_MS, `/health answered within ${HEALTH_DEADLINE_MS} ms (slowest ${slowestHealthMs} ms)`)

  // The connection still works once its client reads: every answer arrives, 200 or 503.
  const statuses = new Map<number, number>()
  socket.on('message', (data: Buffer) => {
    packr.unpackMultiple(data, (frame: unknown) => {
      const status = (frame as number[])[1] as number
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    })
  })
  socket.resume()
  const deadline = Date.now() + 60_000
  while ([...statuses.values()].reduce((a, b) => a + b, 0) < 4096 && Date.now() < deadline) await sleep(200)
  t.same([...statuses.keys()].filter(status => status !== 200 && status !== 503), [], 'answers are 200 or 503')
  t.equal([...statuses.values()].reduce((a, b) => a + b, 0), 4096, 'every request is answered once the client reads')
})

t.test('unfinished stream messages are held only for streamMessageTimeoutMs', async t => {
  const daemon = await startDaemon({ config: { api: { streamMessageTimeoutMs: 1500 } } })
  t.teardown(() => daemon.stop())
  await sleep(300)
  const before = rss(daemon)
  const partials = await Promise.all(Array.from({ length: 16 }, () => partialMessage(daemon, 16 * MIB, 8 * MIB)))
  const started = Date.now()
  t.teardown(() => { for (const partial of partials) partial.socket.destroy() })
  t.ok((await healthMs(daemon)) < HEALTH_DEADLINE_MS, '/health answers while they are held')
  await Promise.race([Promise.all(partials.map(partial => partial.closed)), sleep(15_000)])
  const heldMs = Date.now() - started
  t.ok(partials.every(partial => partial.socket.destroyed), `every connection was closed (after ${heldMs} ms)`)
  t.ok(heldMs < 5000, `within a few seconds of the message timeout (${heldMs} ms after the last bytes)`)
  const peak = rss(daemon).peakBytes
  t.comment(`RSS before ${(before.nowBytes / MIB).toFixed(0)} MiB, peak ${(peak / MIB).toFixed(0)} MiB with 16 partial messages of 8 MiB`)
  t.ok(await metric(daemon, 'hearsay_limit_refusals_total{limit="stream_message_timeout"}') >= 16, 'each cut is counted')
  t.match(daemon.output(), /a limit refused work: stream_message_timeout/, 'and logged')
})

interface ScanPage { items: { key: string; value: string; version: string }[]; next: string | null }

t.test('a scan of 400 values of 1 MiB is paged by bytes: no 500, bounded memory', async t => {
  const daemon = await startDaemon()
  t.teardown(() => daemon.stop())
  const value = Buffer.alloc(MIB, 3)
  for (let i = 0; i < 400; i += 8) {
    await Promise.all(Array.from({ length: 8 }, async (_, j) => {
      const res = await fetch(`${daemon.url}/kv/big-${String(i + j).padStart(3, '0')}`, { method: 'PUT', body: value })
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`PUT answered ${res.status}`)
    }))
  }
  await sleep(500)
  const before = rss(daemon)
  const keys: string[] = []
  let after = ''
  let pages = 0
  const statuses = new Set<number>()
  let peakAnonBytes = before.anonBytes
  const sampler = setInterval(() => { peakAnonBytes = Math.max(peakAnonBytes, rss(daemon).anonBytes) }, 20)
  t.teardown(() => clearInterval(sampler))
  while (pages < 1000) {
    const res = await fetch(`${daemon.url}/kv?prefix=big-&limit=1000&after=${encodeURIComponent(after)}`)
    statuses.add(res.status)
    if (res.status !== 200) break
    const page = await res.json() as ScanPage
    pages++
    for (const item of page.items) {
      keys.push(item.key)
      if (Buffer.from(item.value, 'base64').length !== MIB) throw new Error(`${item.key} came back with the wrong length`)
    }
    if (page.next === null) break
    after = page.next
  }
  clearInterval(sampler)
  const peak = rss(daemon).peakBytes
  t.comment(`${pages} pages; RSS before ${(before.nowBytes / MIB).toFixed(0)} MiB, peak ${(peak / MIB).toFixed(0)} MiB (LMDB's mapped pages included); anonymous RSS before ${(before.anonBytes / MIB).toFixed(0)} MiB, peak ${(peakAnonBytes / MIB).toFixed(0)} MiB`)
  t.same([...statuses], [200], 'every page answered 200')
  t.equal(keys.length, 400, 'every value, once')
  t.same(keys, [...keys].sort(), 'in key order')
  t.ok(pages > 1, 'over several pages')
  t.ok(peakAnonBytes - before.anonBytes < MAX_RSS_GROWTH_BYTES, `anonymous RSS grew by ${((peakAnonBytes - before.anonBytes) / MIB).toFixed(0)} MiB`)
})

t.test('a cluster scan whose replicas cut their pages by bytes still returns every key once, in order', async t => {
  const cluster = await startCluster(3, () => ({
    membership: { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 },
    replication: { factor: 1, writeQuorum: 'all' },
    api: { maxScanPageBytes: 16 * 1024 },
  }))
  t.teardown(() => cluster.stop())
  const [first] = cluster.nodes as [Daemon, ...Daemon[]]
  await waitFor('three alive members', 30_000, async () => {
    const rows = await (await fetch(`${first.url}/members`)).json() as { state: string }[]
    return rows.filter(row => row.state === 'alive').length === 3
  })
  const value = Buffer.alloc(4096, 5)
  const written: string[] = []
  for (let i = 0; i < 60; i++) {
    const key = `k-${String(i).padStart(2, '0')}`
    const res = await fetch(`${first.url}/kv/${key}`, { method: 'PUT', body: value })
    await res.arrayBuffer()
    t.equal(res.status, 200)
    written.push(key)
  }
  const keys: string[] = []
  let after = ''
  let pages = 0
  for (; pages < 200; pages++) {
    const res = await fetch(`${first.url}/kv?prefix=k-&limit=50&after=${encodeURIComponent(after)}`)
    const page = await res.json() as ScanPage
    keys.push(...page.items.map(item => item.key))
    if (page.next === null) break
    after = page.next
  }
  t.same(keys, written, `every key once, in order, over ${pages + 1} pages`)
  t.ok(pages >= 10, 'pages of about 16 KiB')
})

/** Opens `count` raw TCP connections that send nothing; each resolves with what it got and when it closed. */
async function silentConnections(port: number, count: number): Promise<{ received: Promise<string>; closedAtMs: Promise<number> }[]> {
  return Promise.all(Array.from({ length: count }, async () => {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => {})
    let received = ''
    socket.on('data', (chunk: Buffer) => { received += chunk.toString() })
    const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
    await new Promise<void>(resolve => socket.once('connect', () => resolve()))
    return { received: closed.then(() => received), closedAtMs: closed.then(() => Date.now()) }
  }))
}

t.test('connections per client address are capped and silent ones closed, on the API and the peer port', async t => {
  const daemon = await startDaemon({ config: { api: { maxConnectionsPerAddress: 20, idleTimeoutMs: 1000 }, peer: { maxConnectionsPerAddress: 10 } } })
  t.teardown(() => daemon.stop())
  const openedMs = Date.now()
  const api = await silentConnections(daemon.apiPort, 30)
  const refused = await Promise.race([Promise.all(api.slice(20).map(c => c.received)), sleep(5000).then(() => undefined)])
  t.ok(refused?.every(text => text.startsWith('HTTP/1.1 503') && text.includes('limit per client address')), 'connections past the cap are answered 503 with a reason')
  const apiClosed = await Promise.race([Promise.all(api.map(c => c.closedAtMs)), sleep(10_000).then(() => undefined)])
  t.ok(apiClosed !== undefined, 'every silent API connection is closed')
  t.ok(Math.max(...apiClosed ?? [Infinity]) - openedMs < 4000, `within a few seconds of api.idleTimeoutMs (${Math.max(...apiClosed ?? [Infinity]) - openedMs} ms)`)

  const peerOpenedMs = Date.now()
  const peer = await silentConnections(daemon.peerPort, 20)
  const peerClosed = await Promise.race([Promise.all(peer.map(c => c.closedAtMs)), sleep(10_000).then(() => undefined)])
  t.ok(peerClosed !== undefined, 'every silent peer-port connection is closed')
  const sorted = [...peerClosed ?? []].sort((a, b) => a - b)
  t.ok((sorted[9] ?? Infinity) - peerOpenedMs < 1000, 'the 10 past the peer port cap at once')
  t.ok((sorted.at(-1) ?? Infinity) - peerOpenedMs < 5000, `the others within a few seconds (${(sorted.at(-1) ?? Infinity) - peerOpenedMs} ms)`)

  t.ok(await metric(daemon, 'hearsay_limit_refusals_total{limit="api_connections_per_address"}') >= 10, 'API refusals are counted')
  t.match(daemon.output(), /too many connections to the peer port from one address/, 'peer refusals are logged')
  t.ok((await healthMs(daemon)) < HEALTH_DEADLINE_MS, 'the node serves once they are gone')
})

t.test('HTTP requests pipelined on one connection that never reads are answered one at a time', async t => {
  const PIPELINED = 150
  const { daemon, before } = await daemonHoldingBigValue(t)
  const sockets = Array.from({ length: 4 }, () => {
    const socket = net.connect(daemon.apiPort, '127.0.0.1')
    socket.on('error', () => {})
    socket.pause()
    socket.write('GET /kv/big HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(PIPELINED))
    return socket
  })
  t.teardown(() => { for (const socket of sockets) socket.destroy() })
  await sleep(3000)
  const slowestHealthMs = await healthMs(daemon)
  const growth = rss(daemon).peakBytes - before.nowBytes
  t.comment(`4 connections x ${PIPELINED} pipelined GETs of 1 MiB: RSS grew ${(growth / MIB).toFixed(0)} MiB (was ${PIPELINED} MiB per connection), /health ${slowestHealthMs} ms`)
  t.ok(growth < 200 * MIB, `RSS grew by ${(growth / MIB).toFixed(0)} MiB`)
  t.ok(slowestHealthMs < HEALTH_DEADLINE_MS, '/health answers meanwhile')
  // Once the client reads, every pipelined request is answered, in order.
  const socket = sockets[0] as net.Socket
  let bytes = 0
  socket.on('data', (chunk: Buffer) => { bytes += chunk.length })
  socket.resume()
  const expectedBytes = PIPELINED * MIB
  const deadline = Date.now() + 60_000
  while (bytes < expectedBytes && Date.now() < deadline) await sleep(100)
  t.ok(bytes >= expectedBytes, `all ${PIPELINED} answers arrived (${(bytes / MIB).toFixed(0)} MiB)`)
})
