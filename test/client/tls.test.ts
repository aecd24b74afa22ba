import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { runCli } from '../../lib/client/cli.js'
import { describeNetworkError } from '../../lib/client/http-exchange.js'
import { createCa, createCert } from '../../lib/tls/create.js'
import { loadTlsMaterial } from '../../lib/tls/material.js'
import { fixedTlsMaterial, startApi, type Harness } from '../api/fixtures/harness.js'

/**
 * The CLI against an HTTPS API (issue 12): --ca and HEARSAY_CA, --cert/--key for tls.api
 * mutual, and one clear line when a file is missing or the node's certificate is not trusted.
 */

interface RunResult { readonly code: number; readonly stdout: string; readonly stderr: string }

async function hearsay(argv: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  const collect = (into: Buffer[]): Writable => new Writable({ write(chunk: Buffer, _encoding, done) { into.push(Buffer.from(chunk)); done() } })
  const code = await runCli([...argv], { stdin: Readable.from([]), stdout: collect(out), stderr: collect(err), env })
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
}

interface Files { readonly dir: string; readonly ca: string; readonly clientCert: string; readonly clientKey: string }

async function httpsApi(t: Test, mode: 'on' | 'mutual'): Promise<{ api: Harness; url: string; files: Files }> {
  const dir = t.testdir()
  const ca = await createCa({ dir })
  const node = await createCert({ caDir: dir, name: 'alpha', ips: ['127.0.0.1'] })
  const client = await createCert({ caDir: dir, name: 'ops', client: true })
  const material = loadTlsMaterial({ caPath: ca.certPath, certPath: node.certPath, keyPath: node.keyPath }, Date.now())
  const api = await startApi(t, { tls: { mode, minVersion: 'TLSv1.2', material: fixedTlsMaterial(material) } })
  return { api, url: `https://${api.host}:${api.port}`, files: { dir, ca: ca.certPath, clientCert: client.certPath, clientKey: client.keyPath } }
}

t.test('put and get over https with --ca, and with HEARSAY_CA', async t => {
  const { url, files } = await httpsApi(t, 'on')
  const put = await hearsay(['--node', url, '--ca', files.ca, 'put', 'greeting', 'hello'])
  t.equal(put.code, 0, put.stderr)
  t.match(put.stdout, /^stored "greeting" at version /)
  const got = await hearsay(['get', 'greeting'], { HEARSAY_NODE: url, HEARSAY_CA: files.ca })
  t.equal(got.code, 0, got.stderr)
  t.equal(got.stdout, 'hello')
})

t.test('without the CA the node is not trusted, and the error says to pass --ca', async t => {
  const { url } = await httpsApi(t, 'on')
  const result = await hearsay(['--node', url, 'get', 'k'])
  t.equal(result.code, 1)
  t.match(result.stderr, /^hearsay: no hearsay node answered .*certificate not trusted: .*pass --ca FILE \(or HEARSAY_CA\)/)
  t.notMatch(result.stderr.slice(0, -1), /\n/, 'one line')
})

t.test('a plain http:// URL for an HTTPS node gets a hint', async t => {
  const { api } = await httpsApi(t, 'on')
  const result = await hearsay(['--node', `http://${api.host}:${api.port}`, 'get', 'k'])
  t.equal(result.code, 1)
  t.match(result.stderr, /use an https:\/\/ URL/)
})

t.test('tls.api mutual: --cert and --key get in, no certificate is refused with a clear line', async t => {
  const { url, files } = await httpsApi(t, 'mutual')
  const refused = await hearsay(['--node', url, '--ca', files.ca, 'put', 'k', 'v'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /requires a client certificate .*pass --cert FILE --key FILE/)
  const put = await hearsay(['--node', url, '--ca', files.ca, '--cert', files.clientCert, '--key', files.clientKey, 'put', 'k', 'v'])
  t.equal(put.code, 0, put.stderr)
  const got = await hearsay(['get', 'k'], { HEARSAY_NODE: url, HEARSAY_CA: files.ca, HEARSAY_CERT: files.clientCert, HEARSAY_KEY: files.clientKey })
  t.equal(got.stdout, 'v', got.stderr)
})

t.test('missing, unreadable or wrong files are usage errors naming the file', async t => {
  const { url, files } = await httpsApi(t, 'on')
  const notPem = join(files.dir, 'notes.txt')
  writeFileSync(notPem, 'not a certificate\n')
  const locked = join(files.dir, 'locked.pem')
  writeFileSync(locked, '-----BEGIN CERTIFICATE-----\n')
  chmodSync(locked, 0o000)
  const cases: [argv: string[], env: Record<string, string>, message: RegExp][] = [
    [['--ca', join(files.dir, 'nope.pem')], {}, /--ca .*nope\.pem: cannot read it \(no such file\); pass the CA certificate/],
    [[], { HEARSAY_CA: files.dir }, /--ca .*: cannot read it \(it is a directory\)/],
    [['--ca', notPem], {}, /--ca .*notes\.txt is not a PEM certificate/],
    [['--ca', files.ca, '--key', files.clientKey], {}, /--key needs --cert/],
    [['--ca', files.ca, '--cert', files.clientCert, '--key', files.clientCert], {}, /--key .* is not a PEM private key/],
  ]
  // root reads files whatever their mode; the unreadable case only means something for others.
  if (process.getuid?.() !== 0) cases.push([['--ca', locked], {}, /cannot read it \(permission denied\)/])
  for (const [argv, env, message] of cases) {
    const result = await hearsay(['--node', url, ...argv, 'get', 'k'], env)
    t.equal(result.code, 2, `exit 2 for ${argv.join(' ')} ${JSON.stringify(env)}`)
    t.match(result.stderr, message)
  }
})

t.test('TLS failures read as what to do', async t => {
  const describe = (code: string, message = 'x'): string => describeNetworkError(Object.assign(new Error(message), { code }))
  t.match(describe('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), /^certificate not trusted: .*pass --ca FILE/)
  t.match(describe('CERT_HAS_EXPIRED'), /the node's certificate has expired/)
  t.match(describe('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), /does not name the host in the URL .*--ip\/--dns/)
  t.match(describe('EPROTO', 'write EPROTO error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure'), /most likely because it requires a client certificate .*--cert FILE --key FILE/)
  t.match(describe('ERR_SSL_WRONG_VERSION_NUMBER'), /does not speak TLS on this port .*http:\/\//)
  t.match(describe('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), /refused this client's certificate/)
  t.equal(describe('ECONNREFUSED'), 'connection refused (ECONNREFUSED)', 'other errors read as before')
})
