import t from 'tap'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import tls from 'node:tls'
import { createCa, createCert } from '../../lib/tls/create.js'
import { daemonBin, freePort, runProgram, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js'

const EXIT_TIMEOUT_MS = 20_000
const WAIT_MS = 15_000

/** The serial of the certificate a new TLS handshake with the API port shows. */
async function servedSerial(port: number, ca: Buffer): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca })
  try {
    await once(socket, 'secureConnect')
    return socket.getPeerCertificate().serialNumber
  } finally {
    socket.destroy()
  }
}

async function exitOf(daemon: Daemon): Promise<number | null> {
  const child = daemon.process
  if (child.exitCode === null) {
    const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS)
    await once(child, 'exit')
    clearTimeout(timer)
  }
  return child.exitCode
}

function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = path.join(dir, 'hearsay.json')
  fs.writeFileSync(file, JSON.stringify(config))
  return file
}

t.test('hearsayd --check', async t => {
  const dir = tempDir('hearsay-tls-check-')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  await createCa({ dir })
  await createCert({ caDir: dir, name: 'node-1', ips: ['127.0.0.1'] })
  await createCert({ caDir: dir, name: 'old', ips: ['10.0.0.1'], validFrom: new Date(Date.UTC(2020, 0, 1)), days: 1 })
  fs.writeFileSync(path.join(dir, 'secret'), 'abc\n', { mode: 0o644 })
  fs.chmodSync(path.join(dir, 'secret'), 0o644)
  const check = (config: Record<string, unknown>) => runProgram(daemonBin, ['--check', '--config', writeConfig(dir, config)])

  t.test('a secret file others can read: exit 2, the file and its mode named', async t => {
    const result = await check({ cluster: { secretFile: 'secret' } })
    t.equal(result.code, 2)
    t.equal(result.stderr, `hearsayd: config error: cluster.secretFile: ${path.join(dir, 'secret')} has mode 0644, so users other than its owner can read the secret; run chmod 600 ${path.join(dir, 'secret')} (from ${path.join(dir, 'hearsay.json')})\n`)
  })

  t.test('every TLS problem on a line of its own: exit 2', async t => {
    const result = await check({ node: { name: 'node-1' }, tls: { peer: 'on', ca: 'ca.pem', cert: 'old.pem', key: 'node-1-key.pem' } })
    t.equal(result.code, 2)
    const lines = result.stderr.trimEnd().split('\n')
    t.equal(lines.length, 2, result.stderr)
    t.match(lines[0], /^hearsayd: tls\.key .*node-1-key\.pem does not match the certificate in tls\.cert .*old\.pem/)
    t.match(lines[1], /^hearsayd: tls\.cert .*old\.pem has expired \(valid from 2020-01-01T00:00:00\.000Z to 2020-01-02T00:00:00\.000Z\)/)
  })

  t.test('a certificate for other addresses and another node', async t => {
    const result = await check({ node: { name: 'node-9' }, tls: { peer: 'on', api: 'on', ca: 'ca.pem', cert: 'node-1.pem', key: 'node-1-key.pem' }, peer: { advertise: '192.168.1.19:7946' } })
    t.equal(result.code, 2)
    t.match(result.stderr, /^hearsayd: tls\.cert .*node-1\.pem does not name 192\.168\.1\.19, the host of peer\.advertise \(192\.168\.1\.19:7946\)[^\n]*\nhearsayd: tls\.cert .*does not name this node "node-9" \(node\.name\)[^\n]*\n$/)
  })

  t.test('a sound setup: exit 0', async t => {
    fs.chmodSync(path.join(dir, 'secret'), 0o600)
    const result = await check({ node: { name: 'node-1' }, cluster: { secretFile: 'secret' }, tls: { peer: 'on', api: 'mutual', ca: 'ca.pem', cert: 'node-1.pem', key: 'node-1-key.pem' } })
    t.equal(result.code, 0, result.stderr)
    t.match(result.stdout.toString(), /configuration ok/)
  })
})

t.test('the daemon refuses to start', async t => {
  const dir = tempDir('hearsay-tls-start-')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  await createCa({ dir })
  await createCert({ caDir: dir, name: 'someone-else', ips: ['127.0.0.1'] })
  const secret = path.join(dir, 'secret')
  fs.writeFileSync(secret, 'abc\n')
  fs.chmodSync(secret, 0o640)

  t.test('with a secret file group members can read', async t => {
    const daemon = await startDaemon({ config: { cluster: { secretFile: secret } }, waitHealthy: false })
    t.teardown(() => fs.rmSync(daemon.dataDir, { recursive: true, force: true }))
    t.equal(await exitOf(daemon), 2)
    t.match(daemon.output(), `cluster.secretFile: ${secret} has mode 0640, so users other than its owner can read the secret; run chmod 600 ${secret}`)
  })

  t.test('with a certificate that does not name the node', async t => {
    const daemon = await startDaemon({
      config: { node: { name: 'node-1' }, tls: { peer: 'on', ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'someone-else.pem'), key: path.join(dir, 'someone-else-key.pem') } },
      waitHealthy: false,
    })
    t.teardown(() => fs.rmSync(daemon.dataDir, { recursive: true, force: true }))
    t.equal(await exitOf(daemon), 1)
    t.match(daemon.output(), /hearsayd: tls\.cert .*someone-else\.pem does not name this node "node-1" \(node\.name\)/)
  })
})

t.test('SIGHUP reloads the certificate for new handshakes and keeps it when the new files are bad', async t => {
  const dir = tempDir('hearsay-tls-reload-')
  const otherDir = tempDir('hearsay-tls-other-')
  t.teardown(() => { fs.rmSync(dir, { recursive: true, force: true }); fs.rmSync(otherDir, { recursive: true, force: true }) })
  const { certPath: caPath } = await createCa({ dir })
  await createCa({ dir: otherDir })
  const first = await createCert({ caDir: dir, name: 'rot-1', ips: ['127.0.0.1'] })
  const ca = fs.readFileSync(caPath)
  const daemon = await startDaemon({
    apiPort: await freePort(),
    config: { node: { name: 'rot-1' }, tls: { peer: 'on', api: 'on', ca: caPath, cert: first.certPath, key: first.keyPath } },
  })
  t.teardown(async () => { await daemon.stop(); fs.rmSync(daemon.dataDir, { recursive: true, force: true }) })
  const metric = async (name: string): Promise<number> => {
    const text = await (await daemon.fetch('/metrics')).text()
    const line = text.split('\n').find(l => l.startsWith(`${name} `))
    return line === undefined ? NaN : Number(line.split(' ')[1])
  }

  t.equal(await servedSerial(daemon.apiPort, ca), first.serial)
  const yearSeconds = await metric('hearsay_tls_certificate_expiry_seconds')
  t.ok(yearSeconds > 364 * 86_400 && yearSeconds <= 365 * 86_400, `expiry gauge ${yearSeconds} s is a year away`)

  const second = await createCert({ caDir: dir, name: 'rot-1', ips: ['127.0.0.1'], days: 30, force: true })
  daemon.process.kill('SIGHUP')
  await waitFor('the reload log line', WAIT_MS, () => daemon.output().includes(`TLS certificate reloaded: serial ${second.serial}`))
  t.equal(await servedSerial(daemon.apiPort, ca), second.serial, 'a new handshake shows the new serial')
  const monthSeconds = await metric('hearsay_tls_certificate_expiry_seconds')
  t.ok(monthSeconds > 29 * 86_400 && monthSeconds <= 30 * 86_400, `expiry gauge ${monthSeconds} s follows the new certificate`)
  t.equal(await metric('hearsay_tls_reloads_total{result="ok"}'), 1)

  // A certificate from another CA with its own key: a sound pair, but not this cluster's.
  const stranger = await createCert({ caDir: otherDir, name: 'rot-1', ips: ['127.0.0.1'] })
  fs.copyFileSync(stranger.certPath, second.certPath)
  fs.copyFileSync(stranger.keyPath, second.keyPath)
  daemon.process.kill('SIGHUP')
  await waitFor('the refusal log line', WAIT_MS, () => daemon.output().includes(`TLS certificate reload refused, keeping serial ${second.serial}`))
  const refusal = daemon.output().split('\n').find(line => line.includes('TLS certificate reload refused'))
  t.match(JSON.parse(refusal ?? '{}'), { level: 'error', serial: second.serial, reason: /does not chain to the CA in tls\.ca/ }, 'a JSON log line with the reason')
  t.equal(await servedSerial(daemon.apiPort, ca), second.serial, 'the old certificate stays in use')
  t.equal(await metric('hearsay_tls_reloads_total{result="refused"}'), 1)
  t.equal((await daemon.fetch('/health')).status, 200, 'the node keeps serving')
})
