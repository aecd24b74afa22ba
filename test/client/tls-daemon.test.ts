import { readFileSync, rmSync } from 'node:fs'
import tls from 'node:tls'
import t from 'tap'
import { createCert } from '../../lib/tls/create.js'
import { cliBin, makeTlsFiles, runProgram, startDaemon, tlsSettings, waitFor } from '../helpers/daemon.js'

/**
 * A real hearsayd with tls.api mutual (issue 12): the built CLI gets in with a client
 * certificate and is refused without one (counted in /metrics, logged by the daemon), and a
 * SIGHUP with a renewed certificate reaches the next client handshake.
 */

const RELOAD_TIMEOUT_MS = 15_000

t.test('tls.api mutual on a daemon: the CLI needs --cert/--key, and SIGHUP rotates the API certificate', async t => {
  const files = await makeTlsFiles(['solo'])
  t.teardown(() => rmSync(files.dir, { recursive: true, force: true }))
  const client = await createCert({ caDir: files.dir, name: 'ops', client: true })
  const daemon = await startDaemon({
    config: { node: { name: 'solo' }, ...tlsSettings(files, 'solo', { peer: 'off', api: 'mutual' }) },
    clientCertificate: client,
  })
  t.teardown(() => daemon.stop())

  const env = { HEARSAY_NODE: daemon.url, HEARSAY_CA: files.caPath }
  const refused = await runProgram(cliBin, ['put', 'k', 'v'], { env })
  t.equal(refused.code, 1)
  t.match(refused.stderr, /requires a client certificate .*pass --cert FILE --key FILE/)
  const put = await runProgram(cliBin, ['--cert', client.certPath, '--key', client.keyPath, 'put', 'k', 'v'], { env })
  t.equal(put.code, 0, put.stderr)
  const got = await runProgram(cliBin, ['get', 'k'], { env: { ...env, HEARSAY_CERT: client.certPath, HEARSAY_KEY: client.keyPath } })
  t.equal(got.stdout.toString(), 'v', got.stderr)

  const metrics = await (await daemon.fetch('/metrics')).text()
  t.match(metrics, /hearsay_tls_handshake_failures_total\{side="api",reason="no_certificate"\} 1/)
  t.match(daemon.output(), /tls\.api is mutual and the client sent no certificate/, 'the daemon logged why')

  const serialSeen = (): Promise<string> => new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1', port: daemon.apiPort, ca: readFileSync(files.caPath),
      cert: readFileSync(client.certPath), key: readFileSync(client.keyPath),
    }, () => {
      resolve(socket.getPeerCertificate().serialNumber)
      socket.end()
    })
    socket.on('error', reject)
  })
  t.equal(await serialSeen(), files.certs['solo']?.serial)
  const renewed = await createCert({ caDir: files.dir, name: 'solo', ips: ['127.0.0.1'], force: true })
  daemon.process.kill('SIGHUP')
  await waitFor('the API took the reloaded certificate', RELOAD_TIMEOUT_MS, () => daemon.output().includes('client API serves the reloaded TLS certificate'))
  t.equal(await serialSeen(), renewed.serial, 'the next handshake shows the new serial')
})
