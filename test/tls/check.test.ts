import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadConfig } from '../../lib/config/load.js'
import { createCa, createCert } from '../../lib/tls/create.js'
import { checkTlsConfiguration, openTlsMaterial, TlsSetupError, tlsSetupProblems } from '../../lib/tls/check.js'

const DAY_MS = 86_400_000

async function setup(t: { teardown(fn: () => void): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearsay-tls-check-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  await createCa({ dir })
  const config = (name: string, tls: Record<string, string>, extra: NodeJS.ProcessEnv = {}) => loadConfig({
    files: [],
    env: {
      HEARSAY_NODE_NAME: 'node-1', HEARSAY_TLS_CA: path.join(dir, 'ca.pem'),
      HEARSAY_TLS_CERT: path.join(dir, `${name}.pem`), HEARSAY_TLS_KEY: path.join(dir, `${name}-key.pem`),
      ...Object.fromEntries(Object.entries(tls).map(([k, v]) => [`HEARSAY_TLS_${k.toUpperCase()}`, v])),
      ...extra,
    },
  }).config
  return { dir, config }
}

const advertised = { api: '127.0.0.1:7070', peer: '192.168.1.11:7946' }

t.test('a certificate naming the node and its advertised hosts passes', async t => {
  const { dir, config } = await setup(t)
  await createCert({ caDir: dir, name: 'node-1', ips: ['127.0.0.1', '192.168.1.11'] })
  const { material, problems } = tlsSetupProblems(config('node-1', { peer: 'on', api: 'on' }), advertised, Date.now())
  t.same(problems, [])
  t.equal(material?.names.commonName, 'node-1')
})

t.test('TLS off checks nothing', async t => {
  const { config } = await setup(t)
  t.same(tlsSetupProblems(config('absent', {}), advertised, Date.now()), { problems: [] })
  t.equal(openTlsMaterial(config('absent', {}), advertised, Date.now), undefined)
})

t.test('hosts the certificate does not name are reported per advertised address', async t => {
  const { dir, config } = await setup(t)
  await createCert({ caDir: dir, name: 'node-1', ips: ['127.0.0.1'] })
  const peerOnly = tlsSetupProblems(config('node-1', { peer: 'on' }), advertised, Date.now())
  t.equal(peerOnly.material, undefined)
  t.equal(peerOnly.problems.length, 1)
  t.match(peerOnly.problems[0], /^tls\.cert .*node-1\.pem does not name 192\.168\.1\.11, the host of peer\.advertise \(192\.168\.1\.11:7946\), so peers dialing it would refuse the certificate \(it names CN node-1, DNS node-1, IP 127\.0\.0\.1\)/)
  const apiOnly = tlsSetupProblems(config('node-1', { api: 'on' }), { ...advertised, api: 'node-1.lan:7070' }, Date.now())
  t.match(apiOnly.problems, [/does not name node-1\.lan, the host of api\.advertise \(node-1\.lan:7070\), so clients dialing it/])
})

t.test('with tls.peer on the certificate must name the node', async t => {
  const { dir, config } = await setup(t)
  await createCert({ caDir: dir, name: 'node-2', ips: ['127.0.0.1', '192.168.1.11'] })
  const { problems } = tlsSetupProblems(config('node-2', { peer: 'on' }), advertised, Date.now())
  t.match(problems, [/does not name this node "node-1" \(node\.name\) as its CN or a DNS name, so peers would refuse its links/])
  t.same(tlsSetupProblems(config('node-2', { api: 'on' }), advertised, Date.now()).problems, [], 'the API alone does not care about the node name')
})

t.test('material problems and naming problems come one line each', async t => {
  const { dir } = await setup(t)
  await createCert({ caDir: dir, name: 'node-1', ips: ['127.0.0.1', '192.168.1.11'], validFrom: new Date(Date.now() - 10 * DAY_MS), days: 1 })
  await createCert({ caDir: dir, name: 'other', ips: ['127.0.0.1'] })
  const cfg = loadConfig({ files: [], env: {
    HEARSAY_NODE_NAME: 'node-1', HEARSAY_TLS_PEER: 'on', HEARSAY_TLS_CA: path.join(dir, 'ca.pem'),
    HEARSAY_TLS_CERT: path.join(dir, 'node-1.pem'), HEARSAY_TLS_KEY: path.join(dir, 'other-key.pem'),
  } }).config
  const { problems } = tlsSetupProblems(cfg, advertised, Date.now())
  t.equal(problems.length, 2)
  t.match(problems[0], /other-key\.pem does not match the certificate/)
  t.match(problems[1], /node-1\.pem has expired \(valid from .* to .*\)/)
})

t.test('the daemon refuses to start on any problem, naming the first and counting the rest', async t => {
  const { dir, config } = await setup(t)
  await createCert({ caDir: dir, name: 'node-2', ips: ['10.9.9.9'] })
  const cfg = config('node-2', { peer: 'on', api: 'on' })
  let error: unknown
  try { openTlsMaterial(cfg, advertised, Date.now) } catch (e) { error = e }
  t.ok(error instanceof TlsSetupError)
  t.equal((error as TlsSetupError).problems.length, 3, 'two hosts and the node name')
  t.match((error as Error).message, /^tls\.cert .*node-2\.pem does not name 192\.168\.1\.11.*\(and 2 more TLS problems; run hearsayd --check to list them\)$/)
})

t.test('a reload keeps the old certificate when the new one does not name the node', async t => {
  const { dir, config } = await setup(t)
  const first = await createCert({ caDir: dir, name: 'node-1', ips: ['127.0.0.1', '192.168.1.11'] })
  const holder = openTlsMaterial(config('node-1', { peer: 'on' }), advertised, Date.now)!
  await createCert({ caDir: dir, name: 'stranger', ips: ['127.0.0.1', '192.168.1.11'] })
  fs.copyFileSync(path.join(dir, 'stranger.pem'), first.certPath)
  fs.copyFileSync(path.join(dir, 'stranger-key.pem'), first.keyPath)
  const result = holder.reload()
  t.equal(result.ok, false)
  t.match(result.ok ? '' : result.reason, /does not name this node "node-1"/)
  t.equal(holder.current().serial, first.serial)
})

t.test('--check derives the advertised addresses as the daemon does', async t => {
  const { dir, config } = await setup(t)
  await createCert({ caDir: dir, name: 'node-1', ips: ['127.0.0.1'] })
  const cfg = config('node-1', { peer: 'on' }, { HEARSAY_PEER_HOST: '0.0.0.0' })
  const nics = { eth0: [{ address: '10.1.2.3', family: 'IPv4', internal: false } as os.NetworkInterfaceInfo] }
  t.match(checkTlsConfiguration(cfg, nics, Date.now()), [/does not name 10\.1\.2\.3, the host of peer\.advertise \(10\.1\.2\.3:7946\)/])
  t.match(checkTlsConfiguration(cfg, {}, Date.now()), [/peer\.advertise: cannot be derived/])
  t.same(checkTlsConfiguration(config('node-1', { peer: 'on' }), nics, Date.now()), [], 'loopback bind, loopback in the certificate')
  t.same(checkTlsConfiguration(config('node-1', { peer: 'on', api: 'on' }, { HEARSAY_API_PORT: '0', HEARSAY_PEER_PORT: '0' }), nics, Date.now()), [], 'port 0 (any free port) is checked by host alone')
})
