import t, { type Test } from 'tap'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import tls from 'node:tls'
import { join } from 'node:path'
import { createCa, createCert } from '../../lib/tls/create.js'
import { TlsMaterialHolder, loadTlsMaterial } from '../../lib/tls/material.js'
import type { PeerTlsMaterial, PeerTlsOptions, PeerTlsSource } from '../../lib/transport/peer-tls.js'
import type { PeerMessage } from '../../lib/transport/transport.js'
import { identity } from './fixtures.js'
import { startWireTap } from '../helpers/wire-tap.js'
import { eventually, freePort, startNode, type TestNode } from './ws-harness.js'

/**
 * Peer links with `tls.peer on` (issue 12): mutual TLS from one CA, the certificate bound to the
 * node name the handshake claims, plaintext refused both ways with a reason on both sides, and
 * a reload that reaches new handshakes while open links stay.
 */

const dir = mkdtempSync(join(tmpdir(), 'hearsay-peer-tls-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const caDir = join(dir, 'ca')
const otherCaDir = join(dir, 'other-ca')

interface Files { readonly caPath: string; readonly certPath: string; readonly keyPath: string; readonly serial: string }

const made = new Map<string, Files>()

/** A certificate for `name`, made once per CA and directory. */
async function certFor(name: string, options: { ca?: string; days?: number; validFrom?: Date; outDir?: string } = {}): Promise<Files> {
  const ca = options.ca ?? caDir
  const key = `${ca}|${options.outDir ?? ca}|${name}`
  const known = made.get(key)
  if (known !== undefined) return known
  const files = await makeCert(name, ca, options)
  made.set(key, files)
  return files
}

async function makeCert(name: string, ca: string, options: { days?: number; validFrom?: Date; outDir?: string }): Promise<Files> {
  const made = await createCert({ caDir: ca, name, ips: ['127.0.0.1'], outDir: options.outDir ?? ca, ...(options.days === undefined ? {} : { days: options.days }), ...(options.validFrom === undefined ? {} : { validFrom: options.validFrom }) })
  return { caPath: join(ca, 'ca.pem'), ...made }
}

/** A source straight from the files, without lib/tls's validation (so an expired certificate loads). */
function fileSource(files: Files): PeerTlsSource {
  const material: PeerTlsMaterial = { ca: readFileSync(files.caPath), cert: readFileSync(files.certPath), key: readFileSync(files.keyPath), serial: files.serial }
  return { current: () => material, onChange: () => () => {} }
}

function tlsOptions(source: PeerTlsSource): { tls: PeerTlsOptions } {
  return { tls: { source, minVersion: 'TLSv1.2' } }
}

async function started(t: Test, index: number, options: Parameters<typeof startNode>[1] = {}): Promise<TestNode> {
  const node = await startNode(index, options)
  t.teardown(() => node.transport.close())
  return node
}

function serveEcho(node: TestNode): void {
  node.transport.handle('test.echo', (_from, message) => ({ type: 'test.echoed', body: message.body }))
}

const echo: PeerMessage = { type: 'test.echo', body: { text: 'over tls', n: 1 } }

t.before(async () => {
  await createCa({ dir: caDir })
  await createCa({ dir: otherCaDir })
})

t.test('two nodes with certificates from one CA link over TLS and see each other\'s serial', async t => {
  const [one, two] = [await certFor('node-1'), await certFor('node-2')]
  const a = await started(t, 1, tlsOptions(fileSource(one)))
  const b = await started(t, 2, tlsOptions(fileSource(two)))
  serveEcho(b)
  const answer = await a.transport.request(b.identity.peer, echo, 5000)
  t.same(answer.body, echo.body, 'the request went through')
  t.same(a.transport.links().map(link => [link.name, link.serial]), [['node-2', two.serial]], 'the dialer holds the acceptor\'s serial')
  t.ok(await eventually(() => b.transport.links().length === 1), 'the acceptor lists the link')
  t.same(b.transport.links().map(link => [link.name, link.serial]), [['node-1', one.serial]], 'the acceptor holds the dialer\'s serial')
  t.same([...a.counters.tlsFailures, ...b.counters.tlsFailures], [], 'no TLS failure counted')
})

t.test('a certificate from another CA is refused; both sides log and count it', async t => {
  const a = await started(t, 1, tlsOptions(fileSource(await certFor('node-1', { ca: otherCaDir }))))
  const b = await started(t, 2, tlsOptions(fileSource(await certFor('node-2'))))
  a.transport.connect(b.identity.peer)
  // node-1 trusts only the other CA: it rejects node-2's certificate first and hangs up.
  t.ok(await eventually(() => a.counters.tlsFailures.includes('unknown_ca') && b.counters.tlsFailures.includes('rejected_by_peer')), 'both sides counted a failure')
  t.same(a.transport.links(), [], 'no link')
  t.same(b.transport.links(), [], 'no link')
  t.match(a.log.text(), /TLS handshake with the peer failed: the certificate does not chain to the trusted CA/, 'the dialer says why')
  t.match(b.log.text(), /127\.0\.0\.1:\d+ rejected_by_peer .*TLS handshake on the peer port failed: the other side hung up/, 'the acceptor says why, with the address')
  a.transport.forget(b.identity.peer)

  // The other way round, node-2 dials node-1, whose certificate it does not trust either.
  b.transport.connect(a.identity.peer)
  t.ok(await eventually(() => b.counters.tlsFailures.includes('unknown_ca')), 'node-2 rejects the other CA too')
})

t.test('an expired certificate is refused', async t => {
  const expired = await certFor('node-1', { days: 1, validFrom: new Date(Date.now() - 3 * 24 * 3600 * 1000), outDir: join(dir, 'expired') })
  const a = await started(t, 1, tlsOptions(fileSource(expired)))
  const b = await started(t, 2, tlsOptions(fileSource(await certFor('node-2'))))
  a.transport.connect(b.identity.peer)
  t.ok(await eventually(() => b.counters.tlsFailures.includes('expired') && a.counters.tlsFailures.includes('rejected_by_peer')), 'counted on both sides')
  t.match(b.log.text(), /a certificate has expired/, 'the acceptor says why')
  t.same(b.transport.links(), [])
})

t.test('a plaintext dialer on a TLS peer port is refused with a reason it logs', async t => {
  const b = await started(t, 2, tlsOptions(fileSource(await certFor('node-2'))))
  const plain = await started(t, 3)
  plain.transport.connect(b.identity.peer)
  t.ok(await eventually(() => b.counters.tlsFailures.includes('plaintext') && plain.counters.tlsFailures.includes('plaintext')), 'counted on both sides')
  t.match(plain.log.text(), /the peer refused a plaintext link: this peer port requires TLS/, 'the plaintext node logs why')
  t.match(b.log.text(), /plaintext connection on the TLS peer port refused/, 'the TLS node logs why')
  t.same(b.transport.links(), [])
})

t.test('a TLS dialer never falls back to plaintext', async t => {
  const a = await started(t, 1, tlsOptions(fileSource(await certFor('node-1'))))
  const plain = await started(t, 3)
  a.transport.connect(plain.identity.peer)
  t.ok(await eventually(() => a.counters.tlsFailures.includes('plaintext')), 'the TLS side counts plaintext')
  t.ok(await eventually(() => /a TLS client on the plaintext peer port/.test(plain.log.text())), 'the plaintext side logs why')
  t.same(a.transport.links(), [])
  t.same(plain.transport.links(), [])
})

t.test('a certificate that names another node is refused by whichever side checks it', async t => {
  // node-1 holds a valid certificate from the CA, but for the name node-9.
  const a = await started(t, 1, tlsOptions(fileSource(await certFor('node-9'))))
  const b = await started(t, 2, tlsOptions(fileSource(await certFor('node-2'))))
  serveEcho(b)
  await t.rejects(a.transport.request(b.identity.peer, echo, 5000), /refused/, 'the request fails: the link was refused')
  t.ok(await eventually(() => b.counters.tlsFailures.includes('bad_name')), 'the acceptor counts bad_name')
  t.match(b.log.text(), /refused the peer link: the dialer's certificate \(serial [0-9A-F]+\) names "node-9", not the node "node-1" its handshake claims/, 'the acceptor says why')
  t.match(a.log.text(), /the peer refused the link: the dialer's certificate/, 'the dialer logs the refusal')
  // And the other way round: the dialer checks the acceptor's welcome.
  const c = await started(t, 3, tlsOptions(fileSource(await certFor('node-3'))))
  c.transport.connect(a.identity.peer)
  t.ok(await eventually(() => c.counters.tlsFailures.includes('bad_name')), 'the dialer counts bad_name')
  t.match(c.log.text(), /refused the peer link: the acceptor's certificate \(serial [0-9A-F]+\) names "node-9", not the node "node-1"/)
  t.ok(await eventually(() => /the peer refused the link: the acceptor's certificate/.test(a.log.text())), 'the acceptor logs the refusal')
})

t.test('a reload reaches new handshakes and leaves open links up', async t => {
  const liveDir = join(dir, 'live')
  const first = await certFor('node-2', { outDir: liveDir })
  const paths = { caPath: first.caPath, certPath: first.certPath, keyPath: first.keyPath }
  const holder = new TlsMaterialHolder(paths, loadTlsMaterial(paths, Date.now()), () => Date.now())
  const b = await started(t, 2, tlsOptions(holder))
  serveEcho(b)
  const a = await started(t, 1, tlsOptions(fileSource(await certFor('node-1'))))
  await a.transport.request(b.identity.peer, echo, 5000)
  t.same(a.transport.links().map(link => link.serial), [first.serial])

  const second = await certFor('node-2', { outDir: join(dir, 'next') })
  copyFileSync(second.certPath, paths.certPath)
  copyFileSync(second.keyPath, paths.keyPath)
  const reloaded = holder.reload()
  t.ok(reloaded.ok, 'the new files load')
  t.not(second.serial, first.serial)

  await a.transport.request(b.identity.peer, echo, 5000)
  t.same(a.counters.opened, ['outbound'], 'the open link stayed: no link was opened again')
  t.same(a.transport.links().map(link => link.serial), [first.serial], 'and it keeps the certificate of its handshake')
  const c = await started(t, 3, tlsOptions(fileSource(await certFor('node-3'))))
  await c.transport.request(b.identity.peer, echo, 5000)
  t.same(c.transport.links().map(link => link.serial), [second.serial], 'a new handshake shows the new serial')
})

t.test('a passive listener on the wire reads values only when the link is plaintext', async t => {
  const marker = `value-on-the-wire-${'x'.repeat(16)}`
  const request: PeerMessage = { type: 'test.echo', body: { text: marker, n: 7 } }
  const secret = 'a-cluster-secret-that-never-travels'
  for (const mode of ['plaintext', 'tls'] as const) {
    const tlsOf = async (name: string): Promise<{ tls?: PeerTlsOptions }> => mode === 'tls' ? tlsOptions(fileSource(await certFor(name))) : {}
    const b = await started(t, 2, { secret, ...await tlsOf('node-2') })
    serveEcho(b)
    const wire = await startWireTap({ host: '127.0.0.1', port: b.port })
    t.teardown(() => wire.close())
    const a = await started(t, 1, { secret, ...await tlsOf('node-1') })
    const answer = await a.transport.request(`127.0.0.1:${wire.port}`, request, 5000)
    t.same(answer.body, request.body, `${mode}: the request went through the tap`)
    const captured = wire.captured()
    t.ok(captured.byteLength > 0, `${mode}: the tap saw ${captured.byteLength} bytes`)
    t.equal(captured.includes(marker), mode === 'plaintext', `${mode}: the value is ${mode === 'plaintext' ? '' : 'not '}readable on the wire`)
    t.equal(captured.includes(b.identity.name), mode === 'plaintext', `${mode}: the node names in the handshake are ${mode === 'plaintext' ? '' : 'not '}readable`)
    t.notOk(captured.includes(secret), `${mode}: the cluster secret itself never travels (only HMAC proofs do)`)
    await a.transport.close()
    await b.transport.close()
  }
})

t.test('a certificate must cover the host of the peer address the handshake advertises', async t => {
  // Made for 10.9.9.9 only, but the node advertises 127.0.0.1.
  const files = { caPath: join(caDir, 'ca.pem'), ...await createCert({ caDir, name: 'node-1', ips: ['10.9.9.9'], outDir: join(dir, 'elsewhere') }) }
  const a = await started(t, 1, tlsOptions(fileSource(files)))
  const b = await started(t, 2, tlsOptions(fileSource(await certFor('node-2'))))
  a.transport.connect(b.identity.peer)
  t.ok(await eventually(() => b.counters.tlsFailures.includes('bad_name')), 'refused and counted')
  t.match(b.log.text(), /the dialer's certificate \(serial [0-9A-F]+\) does not cover 127\.0\.0\.1, the host of the peer address 127\.0\.0\.1:\d+ its handshake advertises/)
  t.same(b.transport.links(), [])
})

t.test('a node named otherwise cannot take over the address of a linked member', async t => {
  const a = await started(t, 1, tlsOptions(fileSource(await certFor('node-1'))))
  const b = await started(t, 2, tlsOptions(fileSource(await certFor('node-2'))))
  serveEcho(b)
  await a.transport.request(b.identity.peer, echo, 5000)
  // node-3, with a valid certificate for itself on the same host, advertises node-2's address.
  const squatter = await started(t, 3, { ...tlsOptions(fileSource(await certFor('node-3'))), local: { ...identity(3), peer: b.identity.peer } })
  squatter.transport.connect(a.identity.peer)
  t.ok(await eventually(() => a.counters.refusals.includes('local:identity')), 'node-1 refuses the link')
  t.match(a.log.text(), /refused the peer link: 127\.0\.0\.1:\d+ is the address of node "node-2", linked and alive; "node-3" cannot take it over/)
  t.same(a.transport.links().map(link => link.name), ['node-2'], 'node-1 still links node-2 at that address')
  const answer = await a.transport.request(b.identity.peer, echo, 5000)
  t.same(answer.body, echo.body, 'and its traffic still reaches node-2')
  t.same(a.counters.opened, ['outbound'], 'over the same link')
})

t.test('a TLS dial to a node that is down is not a TLS failure', async t => {
  const a = await started(t, 1, tlsOptions(fileSource(await certFor('node-1'))))
  const nobody = await freePort()
  a.transport.connect(`127.0.0.1:${nobody}`)
  t.ok(await eventually(() => a.counters.closed.filter(reason => reason === 'remote').length >= 2), 'it dialed and failed twice')
  t.same(a.counters.tlsFailures, [], 'no TLS failure counted')
  t.notMatch(a.log.text(), /TLS handshake with the peer failed/)
})

t.test('nothing older than tls.minVersion is negotiated', async t => {
  const files = await certFor('node-2')
  const b = await started(t, 2, { tls: { source: fileSource(files), minVersion: 'TLSv1.3' } })
  const client = await certFor('node-1')
  const error = await new Promise<Error & { code?: string }>(resolve => {
    const socket = tls.connect({
      host: '127.0.0.1', port: b.port, ca: readFileSync(client.caPath), cert: readFileSync(client.certPath), key: readFileSync(client.keyPath),
      maxVersion: 'TLSv1.2', checkServerIdentity: () => undefined,
    })
    socket.on('error', resolve)
    socket.on('secureConnect', () => resolve(Object.assign(new Error(`negotiated ${socket.getProtocol()}`), { code: 'NEGOTIATED' })))
  })
  t.not(error.code, 'NEGOTIATED', `a TLS 1.2 client is refused (${error.code})`)
  t.ok(await eventually(() => b.counters.tlsFailures.includes('protocol_version')), 'counted as protocol_version')
  const a = await started(t, 1, { tls: { source: fileSource(client), minVersion: 'TLSv1.3' } })
  serveEcho(b)
  t.same((await a.transport.request(b.identity.peer, echo, 5000)).body, echo.body, 'TLS 1.3 links work')
})
