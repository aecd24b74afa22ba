import t from 'tap'
import { copyFileSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { HearsayClient } from '../../lib/client/client.js'
import { asNodeId } from '../../lib/clock/version.js'
import type { MemberRecord } from '../../lib/membership/messages.js'
import { systemClock } from '../../lib/runtime/clock.js'
import { createRandom } from '../../lib/runtime/random.js'
import { createCa, createCert } from '../../lib/tls/create.js'
import type { PeerTlsOptions } from '../../lib/transport/peer-tls.js'
import type { PeerIdentity } from '../../lib/transport/transport.js'
import { WsTransport } from '../../lib/transport/ws-transport.js'
import { CountingCounters, LogCapture } from '../transport/ws-harness.js'
import { startWireTap, type WireTap } from '../helpers/wire-tap.js'
import {
  cliBin, deepMerge, freePort, makeTlsFiles, runProgram, startDaemon, tempDir, tlsSettings, waitFor, type Daemon, type TlsFiles,
} from '../helpers/daemon.js'

/**
 * Issue 12 on real daemons: a 3-node cluster with tls.peer on and tls.api on joins, replicates,
 * answers the CLI over HTTPS, rotates a certificate by SIGHUP without dropping its links, and a
 * node killed with -9 resyncs after its restart. Then connections that must be refused, each
 * counted by node 1's metric and logged by both sides: another CA, plaintext, an expired
 * certificate, a certificate naming another node; and a node that knows the secret and holds a
 * valid certificate cannot claim another member's id to move or evict it.
 */

const SECRET = 'tls-cluster-test-secret'
const FAST = { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 }
const TIMEOUT_MS = 30_000
const REQUEST_TIMEOUT_MS = 10_000
const NAMES = ['node-1', 'node-2', 'node-3'] as const

interface MemberRow { id: string; name: string; peer: string; api: string; state: string; incarnation: number }
interface LinkRow { id: string; name: string; peer: string; direction: string; serial?: string }
interface Status { digest: string; links: LinkRow[]; members: { alive: number } }

async function json<T>(node: Daemon, path: string): Promise<T> {
  const res = await node.fetch(path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}`)
  return await res.json() as T
}

async function metric(node: Daemon, pattern: RegExp): Promise<number> {
  const text = await (await node.fetch('/metrics', { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).text()
  let sum = 0
  for (const line of text.split('\n')) {
    const match = pattern.exec(line)
    if (match !== null) sum += Number(match[1])
  }
  return sum
}

const tlsFailures = (node: Daemon, reason: string): Promise<number> =>
  metric(node, new RegExp(`^hearsay_tls_handshake_failures_total\\{(?=[^}]*side="peer")(?=[^}]*reason="${reason}")[^}]*\\} (\\d+)$`))
const linksOpened = (node: Daemon): Promise<number> => metric(node, /^hearsay_peer_links_opened_total\{[^}]*\} (\d+)$/)

async function put(node: Daemon, key: string, value: string, w = 'all'): Promise<number> {
  const res = await node.fetch(`/kv/${encodeURIComponent(key)}?w=${w}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  await res.arrayBuffer()
  return res.status
}

async function getLocal(node: Daemon, key: string): Promise<string | undefined> {
  const res = await node.fetch(`/kv/${encodeURIComponent(key)}?r=1`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  const body = await res.text()
  return res.status === 200 ? body : undefined
}

t.test('a TLS cluster joins, replicates, rotates, resyncs and refuses what it must', async t => {
  const files: TlsFiles = await makeTlsFiles(NAMES)
  t.teardown(() => rmSync(files.dir, { recursive: true, force: true }))
  // Nodes 1 and 2 advertise a wire tap in front of their peer port, so whichever of them dials
  // the other, their link crosses a tap; so do node 3's links it dials to them.
  const peerPorts = [await freePort(), await freePort()]
  const taps: WireTap[] = await Promise.all(peerPorts.map(port => startWireTap({ host: '127.0.0.1', port })))
  t.teardown(() => Promise.all(taps.map(tap => tap.close())))
  const configOf = (i: number): Record<string, unknown> => deepMerge(
    { node: { name: NAMES[i] }, cluster: { secret: SECRET, seeds: [`127.0.0.1:${taps[0]!.port}`] }, membership: FAST },
    deepMerge(tlsSettings(files, NAMES[i]!, { peer: 'on', api: 'on' }), i < taps.length ? { peer: { advertise: `127.0.0.1:${taps[i]!.port}` } } : {}),
  )
  const nodes: Daemon[] = []
  t.teardown(async () => {
    await Promise.all(nodes.map(node => node.stop('SIGKILL')))
    for (const node of nodes) rmSync(node.dataDir, { recursive: true, force: true })
  })
  for (let i = 0; i < NAMES.length; i++) nodes.push(await startDaemon({ ...(i < peerPorts.length ? { peerPort: peerPorts[i]! } : {}), config: configOf(i) }))
  const [first, second] = nodes as [Daemon, Daemon, Daemon]
  t.match(first.url, /^https:/, 'the API is HTTPS')

  await waitFor('3 alive members on every node', TIMEOUT_MS, async () => {
    for (const node of nodes) if ((await json<Status>(node, '/status')).members.alive !== 3) return false
    return true
  })
  const serialOf = (name: string): string => files.certs[name]!.serial
  await waitFor('node 1 links to both others', TIMEOUT_MS, async () => (await json<Status>(first, '/status')).links.length === 2)
  const links = (await json<Status>(first, '/status')).links
  t.same(links.map(link => [link.name, link.serial]).sort(), [['node-2', serialOf('node-2')], ['node-3', serialOf('node-3')]],
    'node 1\'s links carry each peer\'s certificate serial')

  t.test('replicates a write to every node, and answers the CLI over HTTPS', async t => {
    const value = 'a value no passive listener may read'
    t.equal(await put(first, 'greeting', value), 200, 'W=all acknowledged by all three')
    for (const node of nodes) t.equal(await getLocal(node, 'greeting'), value, `${node.url} holds it itself`)
    const wire = Buffer.concat(taps.map(tap => tap.captured()))
    t.ok(wire.byteLength > 10_000, `the taps saw the peer links' bytes (${wire.byteLength})`)
    t.notOk(wire.includes(value), 'the value is not on the wire (test/transport/tls.test.ts shows the tap reads it without TLS)')
    t.notOk(wire.includes(SECRET), 'nor the cluster secret')
    t.notOk(wire.includes('node-2'), 'nor a node name')
    const cli = await runProgram(cliBin, ['--node', nodes[2]!.url, '--ca', files.caPath, 'get', 'greeting'], { env: {} })
    t.equal(cli.code, 0, `hearsay get over https exits 0 (${cli.stderr.trim()})`)
    t.equal(cli.stdout.toString('utf8').trim(), value)
  })

  t.test('client.watch follows a prefix over HTTPS with the cluster CA', async t => {
    const client = new HearsayClient({ nodes: [second.url], tls: { ca: readFileSync(files.caPath) }, timeoutMs: REQUEST_TIMEOUT_MS })
    t.teardown(() => client.close())
    const stop = new AbortController()
    const changes = client.watch('watched/', { signal: stop.signal })
    const first3 = changes.next()
    // The watch is open once the node counts it; only then is the write certain to be after it.
    await waitFor('node 2 to count the watch', TIMEOUT_MS, async () => (await metric(second, /^hearsay_watchers (\d+)$/)) === 1)
    t.equal(await put(first, 'watched/a', 'seen over TLS'), 200)
    const event = await first3
    stop.abort()
    t.equal(event.done, false, 'the watch delivered a change')
    t.match(event.value, { key: 'watched/a', deleted: false }, 'the written key')
    t.equal(Buffer.from((event.value as { value: Buffer }).value).toString(), 'seen over TLS')
  })

  t.test('a SIGHUP after replacing the certificate keeps the links up; the next handshake shows the new serial', async t => {
    const opened = await Promise.all(nodes.map(linksOpened))
    const cert = files.certs['node-2']!
    const nextDir = tempDir('hearsay-tls-next-')
    t.teardown(() => rmSync(nextDir, { recursive: true, force: true }))
    const next = await createCert({ caDir: files.dir, name: 'node-2', ips: ['127.0.0.1'], outDir: nextDir })
    t.not(next.serial, cert.serial)
    copyFileSync(next.certPath, cert.certPath)
    copyFileSync(next.keyPath, cert.keyPath)
    second.process.kill('SIGHUP')
    await waitFor('node 2 to take the new certificate', TIMEOUT_MS, () => second.output().includes(next.serial))

    t.equal(await put(first, 'after-rotation', 'still linked'), 200, 'W=all still acknowledged by all three')
    t.same(await Promise.all(nodes.map(linksOpened)), opened, 'no node opened a link: the existing ones stayed up')
    const toSecond = (await json<Status>(first, '/status')).links.find(link => link.name === 'node-2')
    t.equal(toSecond?.serial, cert.serial, 'node 1\'s open link to node 2 keeps its handshake\'s certificate')

    // Node 3 is killed with -9 and misses writes; its restart dials anew and must resync.
    const third = nodes[2]!
    await third.stop('SIGKILL')
    for (let i = 0; i < 5; i++) t.equal(await put(first, `while-down/${i}`, `value ${i}`, 'quorum'), 200, `while-down/${i} acknowledged by a quorum`)
    const restarted = await startDaemon({ dataDir: third.dataDir, apiPort: third.apiPort, peerPort: third.peerPort, config: configOf(2) })
    nodes[2] = restarted
    await waitFor('node 3 linked to node 2 again', TIMEOUT_MS, async () => (await json<Status>(restarted, '/status')).links.some(link => link.name === 'node-2'))
    const fresh = (await json<Status>(restarted, '/status')).links.find(link => link.name === 'node-2')
    t.equal(fresh?.serial, next.serial, 'the new handshake shows node 2\'s new serial')
    let digests: string[] = []
    await waitFor('equal digests on every node', TIMEOUT_MS, async () => {
      await restarted.fetch('/admin/sync', { method: 'POST', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).then(res => res.arrayBuffer())
      digests = await Promise.all(nodes.map(async node => (await json<Status>(node, '/status')).digest))
      return digests.every(digest => digest === digests[0])
    })
    t.ok(digests.every(digest => digest === digests[0]), `the restarted node's digest equals the others' (${digests.join(', ')})`)
    t.equal(await getLocal(restarted, 'while-down/4'), 'value 4', 'it holds a write it missed')
  })

  t.test('connections that must be refused are counted and logged on both sides', async t => {
    const dir = tempDir('hearsay-tls-intruders-')
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const otherCa = join(dir, 'other-ca')
    await createCa({ dir: otherCa })
    const material = (caPath: string, cert: { certPath: string; keyPath: string; serial: string }): PeerTlsOptions => {
      const m = { ca: readFileSync(caPath), cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath), serial: cert.serial }
      return { source: { current: () => m, onChange: () => () => {} }, minVersion: 'TLSv1.2' }
    }
    const intruder = async (name: string, tls: PeerTlsOptions | undefined, id = asNodeId('00000000000000aa')): Promise<{ transport: WsTransport; log: LogCapture; counters: CountingCounters; self: PeerIdentity }> => {
      const port = await freePort()
      const log = new LogCapture()
      const counters = new CountingCounters()
      const self: PeerIdentity = { id, name, peer: `127.0.0.1:${port}`, api: `127.0.0.1:${port}` }
      const transport = new WsTransport({
        bindHost: '127.0.0.1', bindPort: port, local: self, clusterName: 'hearsay', secret: SECRET,
        log: log.logger, counters, clock: systemClock, random: createRandom(port), ...(tls === undefined ? {} : { tls }),
      })
      await transport.start()
      t.teardown(() => transport.close())
      return { transport, log, counters, self }
    }
    const to = `127.0.0.1:${first.peerPort}`
    const firstLogs = (pattern: RegExp): boolean => pattern.test(first.output())

    // Another CA: the intruder trusts only its own, so it rejects node 1's certificate and hangs up.
    const before = await tlsFailures(first, 'rejected_by_peer')
    const foreign = await intruder('node-9', material(join(otherCa, 'ca.pem'), await createCert({ caDir: otherCa, name: 'node-9', ips: ['127.0.0.1'] })))
    foreign.transport.connect(to)
    await waitFor('node 1 to count the foreign CA', TIMEOUT_MS, async () => (await tlsFailures(first, 'rejected_by_peer')) > before)
    t.ok(foreign.counters.tlsFailures.includes('unknown_ca'), 'the foreign node counts unknown_ca')
    t.match(foreign.log.text(), /TLS handshake with the peer failed: the certificate does not chain to the trusted CA/, 'and says why')
    t.ok(firstLogs(/TLS handshake on the peer port failed: the other side hung up/), 'node 1 logs the failed handshake')
    foreign.transport.forget(to)

    // Plaintext on the TLS peer port.
    const plain = await intruder('node-8', undefined)
    plain.transport.connect(to)
    await waitFor('node 1 to count plaintext', TIMEOUT_MS, async () => (await tlsFailures(first, 'plaintext')) > 0)
    t.ok(firstLogs(/plaintext connection on the TLS peer port refused/), 'node 1 logs the plaintext connection')
    await waitFor('the plaintext node to log the refusal', TIMEOUT_MS, () => /the peer refused a plaintext link: this peer port requires TLS/.test(plain.log.text()))
    plain.transport.forget(to)

    // An expired certificate from the cluster's CA.
    const expired = await createCert({ caDir: files.dir, name: 'node-7', ips: ['127.0.0.1'], days: 1, validFrom: new Date(Date.now() - 3 * 86_400_000), outDir: dir })
    const stale = await intruder('node-7', material(files.caPath, expired))
    stale.transport.connect(to)
    await waitFor('node 1 to count the expired certificate', TIMEOUT_MS, async () => (await tlsFailures(first, 'expired')) > 0)
    t.ok(firstLogs(/TLS handshake on the peer port failed: a certificate has expired/), 'node 1 logs the expired certificate')
    t.ok(stale.counters.tlsFailures.includes('rejected_by_peer'), 'the expired node counts the refusal')
    stale.transport.forget(to)

    // A valid certificate for "mallory" whose handshake claims to be node-3.
    const mallory = await createCert({ caDir: files.dir, name: 'mallory', ips: ['127.0.0.1'], outDir: dir })
    const liar = await intruder('node-3', material(files.caPath, mallory))
    liar.transport.connect(to)
    await waitFor('node 1 to count the misnamed certificate', TIMEOUT_MS, async () => (await tlsFailures(first, 'bad_name')) > 0)
    // The daemon logs JSON: the quotes around the names come escaped.
    t.ok(firstLogs(/refused the peer link: the dialer's certificate \(serial [0-9A-F]+\) names \\"mallory\\", not the node \\"node-3\\" its handshake claims/), 'node 1 says why')
    await waitFor('the misnamed node to log the refusal', TIMEOUT_MS, () => /the peer refused the link: the dialer's certificate/.test(liar.log.text()))
    liar.transport.forget(to)
    t.same((await json<MemberRow[]>(first, '/members')).map(m => m.name).sort(), [...NAMES], 'none of them became a member')
  })

  t.test('a node with a valid certificate that claims another member\'s id can neither move nor evict it', async t => {
    const dir = tempDir('hearsay-tls-mallory-')
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const real = await json<MemberRow[]>(first, '/members')
    const node3 = real.find(m => m.name === 'node-3')!
    const cert = await createCert({ caDir: files.dir, name: 'mallory', ips: ['127.0.0.1'], outDir: dir })
    const m = { ca: readFileSync(files.caPath), cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath), serial: cert.serial }
    const port = await freePort()
    // Its certificate names mallory, its handshake says so too, but the id it claims is node 3's.
    const self: PeerIdentity = { id: asNodeId(node3.id), name: 'mallory', peer: `127.0.0.1:${port}`, api: `127.0.0.1:${port}` }
    const transport = new WsTransport({
      bindHost: '127.0.0.1', bindPort: port, local: self, clusterName: 'hearsay', secret: SECRET, log: new LogCapture().logger,
      clock: systemClock, random: createRandom(port), tls: { source: { current: () => m, onChange: () => () => {} }, minVersion: 'TLSv1.2' },
    })
    let replied = false
    transport.handle('pushPullReply', () => { replied = true; return undefined })
    await transport.start()
    t.teardown(() => transport.close())
    const to = `127.0.0.1:${first.peerPort}`
    const lie = (changes: Partial<MemberRecord>): MemberRecord => ({
      id: asNodeId(node3.id), name: node3.name, peer: node3.peer, api: node3.api, incarnation: node3.incarnation + 1, state: 'alive', ...changes,
    })
    transport.send(to, { type: 'gossip', body: { gossip: [lie({ peer: self.peer, api: self.api })] } })
    transport.send(to, { type: 'gossip', body: { gossip: [lie({ peer: self.peer, api: self.api, name: 'mallory', incarnation: node3.incarnation + 2 })] } })
    transport.send(to, { type: 'gossip', body: { gossip: [lie({ state: 'left', incarnation: node3.incarnation + 3 })] } })
    transport.send(to, { type: 'gossip', body: { gossip: [lie({ state: 'left', name: 'mallory', incarnation: node3.incarnation + 4 })] } })
    // Frames on one link are handled in order: the answer to this push-pull follows the lies.
    transport.send(to, { type: 'pushPull', body: { members: [], join: false } })
    await waitFor('node 1 to answer the push-pull sent after the lies', TIMEOUT_MS, () => replied)
    const now3 = (await json<MemberRow[]>(first, '/members')).find(row => row.id === node3.id)
    t.same([now3?.name, now3?.peer, now3?.api], [node3.name, node3.peer, node3.api], 'node 3 keeps its name and addresses')
    t.equal(now3?.state, 'alive', 'node 3 is not evicted')
    t.equal(await put(first, 'after-mallory', 'all three'), 200, 'W=all through node 1 still reaches node 3')
  })
})
