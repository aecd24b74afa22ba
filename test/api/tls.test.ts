import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import { join } from 'node:path'
import t from 'tap'
import { startApi } from './fixtures/harness.js'
import { fixedTlsMaterial } from '../../lib/api/tls.js'

const hasOpenssl = spawnSync('openssl', ['version']).status === 0

t.test('with TLS options the API serves HTTPS', { skip: hasOpenssl ? false : 'openssl is not installed' }, async t => {
  const dir = t.testdir()
  const keyPath = join(dir, 'key.pem')
  const certPath = join(dir, 'cert.pem')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath], { timeout: 30_000 })
  t.equal(made.status, 0, 'a self-signed certificate was made')
  const cert = readFileSync(certPath)
  const api = await startApi(t, { tls: { mode: 'on', minVersion: 'TLSv1.2', material: fixedTlsMaterial({ key: readFileSync(keyPath), cert, ca: cert }) } })

  const answer = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
    const req = https.get({ host: api.host, port: api.port, path: '/health', ca: cert }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('error', reject)
  })
  t.equal(answer.status, 200)
  t.match(JSON.parse(answer.body), { status: 'ok' })
  await t.rejects(fetch(`${api.url}/health`), 'plain HTTP is not served on the TLS port')
})
