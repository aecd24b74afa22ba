import { readFileSync } from 'node:fs'
import https from 'node:https'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import type { ApiTlsSettings } from '../../lib/api/tls.js'
import { HearsayClient } from '../../lib/client/client.js'
import { createCa, createCert } from '../../lib/tls/create.js'
import { loadTlsMaterial, TlsMaterialHolder, type TlsPaths } from '../../lib/tls/material.js'
import { startWireTap } from '../helpers/wire-tap.js'
import { fixedTlsMaterial, startApi, type Harness } from './fixtures/harness.js'

/**
 * The client API over TLS (issue 12): HTTPS and WSS with certificates made by lib/tls/create,
 * mutual TLS, rotation by the material holder, and a passive listener that must read nothing.
 */

interface Pki {
  readonly dir: string
  readonly paths: TlsPaths
  readonly ca: Buffer
  /** A client certificate from the same CA, for mutual TLS. */
  readonly client: { readonly cert: Buffer; readonly key: Buffer }
}

async function makePki(t: Test): Promise<Pki> {
  const dir = t.testdir()
  const ca = await createCa({ dir })
  const node = await createCert({ caDir: dir, name: 'alpha', ips: ['127.0.0.1'] })
  const client = await createCert({ caDir: dir, name: 'client-1', client: true })
  return {
    dir,
    paths: { caPath: ca.certPath, certPath: node.certPath, keyPath: node.keyPath },
    ca: readFileSync(ca.certPath),
    client: { cert: readFileSync(client.certPath), key: readFileSync(client.keyPath) },
  }
}

function settings(pki: Pki, mode: ApiTlsSettings['mode'], material = fixedTlsMaterial(loadTlsMaterial(pki.paths, Date.now()))): ApiTlsSettings {
  return { mode, minVersion: 'TLSv1.2', material }
}

interface Answer { readonly status: number; readonly body: string; readonly reusedSocket: boolean; readonly serial: string }

function get(api: Harness, path: string, options: https.RequestOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: api.host, port: api.port, path, ...options }, res => {
      let body = ''
      const serial = (res.socket as tls.TLSSocket).getPeerCertificate().serialNumber
      res.setEncoding('utf8')
      res.on('data', chunk => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reusedSocket: req.reusedSocket, serial }))
    })
    req.on('error', reject)
  })
}

async function failures(api: Harness, reason: string): Promise<number> {
  const metric = await api.metrics.tlsHandshakeFailures.get()
  return metric.values.filter(v => v.labels.side === 'api' && v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0)
}

function tlsClient(t: Test, api: Harness, options: { ca: Buffer; cert?: Buffer; key?: Buffer }, transport?: 'http' | 'binary'): HearsayClient {
  const client = new HearsayClient({ nodes: [`https://${api.host}:${api.port}`], tls: options, ...(transport === undefined ? {} : { transport }) })
  t.teardown(() => client.close())
  return client
}

t.test('with tls on the API serves HTTPS, and its status page links nothing over plain http:// or ws://', async t => {
  const pki = await makePki(t)
  const api = await startApi(t, { tls: settings(pki, 'on') })
  const health = await get(api, '/health', { ca: pki.ca })
  t.equal(health.status, 200)
  t.match(JSON.parse(health.body), { status: 'ok' })
  const page = await get(api, '/', { ca: pki.ca })
  t.equal(page.status, 200)
  t.match(page.body, /<title>hearsay<\/title>/, 'the dashboard')
  t.notMatch(page.body, /https?:\/\/|wss?:\/\//, 'links are relative, so they keep the page\'s scheme')
  const script = await get(api, '/dashboard.js', { ca: pki.ca })
  t.equal(script.status, 200)
  t.notMatch(script.body, /(fetch|EventSource|WebSocket)\(\s*['"`](https?|wss?):/, 'the dashboard\'s requests are relative too')
  await t.rejects(fetch(`${api.url}/health`), 'plain HTTP is not served on the TLS port')
  await t.resolves(waitFor(async () => await failures(api, 'plaintext') === 1), 'the plain request counts as a failed handshake')
})

t.test('the stream protocol runs over wss://', async t => {
  const pki = await makePki(t)
  const api = await startApi(t, { tls: settings(pki, 'on') })
  const client = tlsClient(t, api, { ca: pki.ca })
  await client.put('a', '1')
  await client.put('b', '2')
  t.equal((await client.get('b'))?.value.toString(), '2')
  t.equal(api.logLines.filter(line => line.msg === 'stream connection opened').length, 1, 'the client upgraded to a wss:// stream')
})

t.test('a client that does not trust the node\'s CA is told to pass --ca; the node counts it', async t => {
  const pki = await makePki(t)
  const api = await startApi(t, { tls: settings(pki, 'on') })
  const stranger = await makePki(t)
  const client = tlsClient(t, api, { ca: stranger.ca })
  await t.rejects(client.health(), /certificate not trusted: .*pass --ca FILE \(or HEARSAY_CA\)/)
  // The client hangs up without an alert the server could read; the reason is the generic one.
  await t.resolves(waitFor(async () => await failures(api, 'rejected_by_peer') === 1), 'the refused handshake was counted')
})

t.test('tls mutual refuses a client without a certificate, and one from another CA, and accepts one from tls.ca', async t => {
  const pki = await makePki(t)
  const api = await startApi(t, { tls: settings(pki, 'mutual') })

  const bare = tlsClient(t, api, { ca: pki.ca }, 'http')
  await t.rejects(bare.health(), /requires a client certificate .*pass --cert FILE --key FILE/)
  await t.resolves(waitFor(async () => await failures(api, 'no_certificate') === 1))
  const noCert = api.logLines.find(line => line.reason === 'no_certificate')
  t.match(noCert, { level: 40, msg: /tls.api is mutual and the client sent no certificate/ }, 'the server logged why')

  const stranger = await makePki(t)
  const foreign = tlsClient(t, api, { ca: pki.ca, ...stranger.client }, 'http')
  await t.rejects(foreign.health())
  await t.resolves(waitFor(async () => await failures(api, 'unknown_ca') === 1))
  t.match(api.logLines.find(line => line.reason === 'unknown_ca'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', msg: /does not chain to tls.ca/ })

  const member = tlsClient(t, api, { ca: pki.ca, ...pki.client })
  t.match(await member.health(), { status: 'ok' })
  await member.put('k', 'v')
  t.equal((await member.get('k'))?.value.toString(), 'v', 'over the wss:// stream too')
  t.equal(api.logLines.filter(line => line.msg === 'stream connection opened').length, 1)
})

t.test('tls.minVersion TLSv1.3 refuses a client that offers only TLS 1.2', async t => {
  const pki = await makePki(t)
  const api = await startApi(t, { tls: { ...settings(pki, 'on'), minVersion: 'TLSv1.3' } })
  await t.rejects(get(api, '/health', { ca: pki.ca, maxVersion: 'TLSv1.2', agent: false }))
  await t.resolves(waitFor(async () => await failures(api, 'protocol_version') === 1), 'counted as protocol_version')
  const modern = await get(api, '/health', { ca: pki.ca, agent: false })
  t.equal(modern.status, 200, 'a TLS 1.3 client gets in')
})

t.test('a reloaded certificate reaches new connections while open ones keep working', async t => {
  const pki = await makePki(t)
  const holder = new TlsMaterialHolder(pki.paths, loadTlsMaterial(pki.paths, Date.now()), Date.now)
  const api = await startApi(t, { tls: settings(pki, 'on', holder) })
  const firstSerial = holder.current().serial

  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca })
  t.teardown(() => agent.destroy())
  const before = await get(api, '/health', { agent })
  t.equal(before.serial, firstSerial, 'the first connection sees the first certificate')
  const stream = tlsClient(t, api, { ca: pki.ca })
  await stream.put('a', '1')
  await stream.put('b', '2')

  const renewed = await createCert({ caDir: pki.dir, name: 'alpha', ips: ['127.0.0.1'], force: true })
  const reloaded = holder.reload()
  t.ok(reloaded.ok, 'the holder took the new files')
  t.not(renewed.serial, firstSerial)

  const fresh = await get(api, '/health', { ca: pki.ca, agent: false })
  t.equal(fresh.serial, renewed.serial, 'a new connection is served the new certificate')
  const kept = await get(api, '/health', { agent })
  t.ok(kept.reusedSocket, 'the keep-alive connection stayed open')
  t.equal(kept.serial, firstSerial, 'and still runs on the first handshake')
  t.equal(kept.status, 200)
  await stream.put('c', '3')
  t.equal((await stream.get('c'))?.value.toString(), '3')
  t.equal(api.logLines.filter(line => line.msg === 'stream connection opened').length, 1, 'the open stream carried on, no reconnect')
})

t.test('a passive listener reads neither values nor the bearer token; without TLS it reads both', async t => {
  const pki = await makePki(t)
  const token = 'tap-token-5c1d0e7a9b'
  const value = 'secret-value-8f3e2a61'
  for (const mode of ['off', 'on'] as const) {
    const api = await startApi(t, { token, ...(mode === 'on' ? { tls: settings(pki, 'on') } : {}) })
    const tap = await startWireTap({ host: api.host, port: api.port })
    t.teardown(() => tap.close())
    const client = new HearsayClient({
      nodes: [`${mode === 'on' ? 'https' : 'http'}://${tap.host}:${tap.port}`],
      token,
      ...(mode === 'on' ? { tls: { ca: pki.ca } } : {}),
    })
    try {
      await client.put('k1', value)
      await client.put('k2', value)
      t.equal((await client.get('k2'))?.value.toString(), value)
    } finally {
      client.close()
    }
    t.ok(tap.connections >= 1, `the ${mode} client went through the tap`)
    t.equal(tap.saw(value), mode === 'off', `value bytes readable on the wire with TLS ${mode}`)
    t.equal(tap.saw(token), mode === 'off', `the token readable on the wire with TLS ${mode}`)
  }
})

/** Polls `check` until it holds; bounded. */
async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
