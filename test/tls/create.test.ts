import t from 'tap'
import { X509Certificate } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createCa, createCert, TlsCreateError } from '../../lib/tls/create.js'

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const DAY_MS = 86_400_000

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearsay-tls-create-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

const read = (file: string): X509Certificate => new X509Certificate(fs.readFileSync(file))
const mode = (file: string): number => fs.statSync(file).mode & 0o777

t.test('a CA is a self-signed P-256 CA certificate with a private key file', async t => {
  const dir = tempDir(t)
  const before = Date.now()
  const { certPath, keyPath } = await createCa({ dir, days: 30, commonName: 'lab CA' })
  t.equal(certPath, path.join(dir, 'ca.pem'))
  t.equal(keyPath, path.join(dir, 'ca-key.pem'))
  const ca = read(certPath)
  t.ok(ca.ca, 'basic constraints say CA')
  t.equal(ca.subject, 'CN=lab CA')
  t.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey), 'self-signed')
  t.same(ca.publicKey.asymmetricKeyDetails, { namedCurve: 'prime256v1' })
  const lifetimeMs = Date.parse(ca.validTo) - Date.parse(ca.validFrom)
  t.equal(lifetimeMs, 30 * DAY_MS)
  t.ok(Date.parse(ca.validFrom) <= before, 'valid at once')
  t.equal(mode(keyPath), 0o600)
  t.equal(mode(certPath), 0o644)
})

t.test('two CAs made with the default name are told apart by their names', async t => {
  const a = read((await createCa({ dir: tempDir(t) })).certPath)
  const b = read((await createCa({ dir: tempDir(t) })).certPath)
  t.match(a.subject, /^CN=hearsay CA [0-9a-f]{8}$/)
  t.not(a.subject, b.subject)
})

t.test('a node certificate chains to its CA and names the node, its IPs and DNS names', async t => {
  const dir = tempDir(t)
  await createCa({ dir })
  const created = await createCert({ caDir: dir, name: 'node-1', ips: ['192.168.1.11', 'fd00::11'], dns: ['node-1.lan'] })
  t.equal(created.certPath, path.join(dir, 'node-1.pem'))
  t.equal(created.keyPath, path.join(dir, 'node-1-key.pem'))
  const ca = read(path.join(dir, 'ca.pem'))
  const cert = read(created.certPath)
  t.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'signed by the CA')
  t.notOk(cert.ca)
  t.equal(cert.subject, 'CN=node-1')
  t.equal(cert.serialNumber, created.serial)
  t.match(created.serial, /^[0-9A-F]{32}$/)
  t.equal(cert.checkIP('192.168.1.11'), '192.168.1.11')
  t.equal(cert.checkIP('fd00:0:0::11'), 'fd00:0:0::11')
  t.equal(cert.checkIP('192.168.1.12'), undefined)
  t.equal(cert.checkHost('node-1'), 'node-1', 'the node name is a DNS SAN')
  t.equal(cert.checkHost('node-1.lan'), 'node-1.lan')
  t.same(cert.keyUsage, [SERVER_AUTH, CLIENT_AUTH])
  t.same(cert.publicKey.asymmetricKeyDetails, { namedCurve: 'prime256v1' })
  t.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(fs.readFileSync(created.keyPath))))
  t.equal(mode(created.keyPath), 0o600)
})

t.test('a client certificate is for client authentication only', async t => {
  const dir = tempDir(t)
  await createCa({ dir })
  const out = path.join(dir, 'clients')
  const created = await createCert({ caDir: dir, name: 'ops', client: true, outDir: out })
  t.equal(created.certPath, path.join(out, 'ops.pem'))
  t.same(read(created.certPath).keyUsage, [CLIENT_AUTH])
})

t.test('days and validFrom set the validity window', async t => {
  const dir = tempDir(t)
  await createCa({ dir })
  const validFrom = new Date(Date.UTC(2020, 0, 1))
  const cert = read((await createCert({ caDir: dir, name: 'old', ips: ['10.0.0.1'], validFrom, days: 2 })).certPath)
  t.equal(Date.parse(cert.validFrom), validFrom.getTime())
  t.equal(Date.parse(cert.validTo), validFrom.getTime() + 2 * DAY_MS)
  const fresh = read((await createCert({ caDir: dir, name: 'fresh', ips: ['10.0.0.2'] })).certPath)
  t.equal(Date.parse(fresh.validTo) - Date.parse(fresh.validFrom), 365 * DAY_MS, 'a year by default')
  t.ok(Date.parse(fresh.validFrom) <= Date.now(), 'valid at once')
})

t.test('every certificate gets its own serial', async t => {
  const dir = tempDir(t)
  await createCa({ dir })
  const a = await createCert({ caDir: dir, name: 'a', ips: ['10.0.0.1'] })
  const b = await createCert({ caDir: dir, name: 'b', ips: ['10.0.0.1'] })
  t.not(a.serial, b.serial)
})

t.test('existing files are kept unless forced', async t => {
  const dir = tempDir(t)
  const first = await createCa({ dir })
  const pem = fs.readFileSync(first.certPath, 'utf8')
  await t.rejects(createCa({ dir }), { name: 'TlsCreateError', message: /ca\.pem already exists; remove it or pass --force/ })
  t.equal(fs.readFileSync(first.certPath, 'utf8'), pem, 'untouched')
  await createCa({ dir, force: true })
  t.not(fs.readFileSync(first.certPath, 'utf8'), pem, 'replaced with --force')
  const node = await createCert({ caDir: dir, name: 'n', ips: ['10.0.0.1'] })
  await t.rejects(createCert({ caDir: dir, name: 'n', ips: ['10.0.0.1'] }), /n\.pem already exists/)
  fs.chmodSync(node.keyPath, 0o644)
  await createCert({ caDir: dir, name: 'n', ips: ['10.0.0.1'], force: true })
  t.equal(mode(node.keyPath), 0o600, 'an overwritten key is private again')
})

t.test('bad arguments are refused with a sentence naming them', async t => {
  const dir = tempDir(t)
  await createCa({ dir })
  const cases: Array<[Parameters<typeof createCert>[0], RegExp]> = [
    [{ caDir: dir, name: 'n', ips: ['300.1.1.1'] }, /"300\.1\.1\.1" is not an IP address/],
    [{ caDir: dir, name: 'n', dns: ['bad name'] }, /"bad name" is not a DNS name/],
    [{ caDir: dir, name: 'n', ips: ['10.0.0.1'], days: 0 }, /days must be a whole number from 1 to 36500, not 0/],
    [{ caDir: dir, name: 'n', ips: ['10.0.0.1'], days: 1.5 }, /not 1\.5/],
    [{ caDir: dir, name: '', ips: ['10.0.0.1'] }, /name is empty/],
    [{ caDir: dir, name: '../n', ips: ['10.0.0.1'] }, /cannot be a file name/],
    [{ caDir: dir, name: 'node_1' }, /needs the addresses .* give --ip/],
    [{ caDir: path.join(dir, 'none'), name: 'n', ips: ['10.0.0.1'] }, /cannot read the CA certificate .*ca\.pem \(ENOENT\)/],
  ]
  for (const [options, message] of cases) await t.rejects(createCert(options), message, String(message))
  await t.rejects(createCa({ dir: tempDir(t), days: -1 }), TlsCreateError)
  t.same(fs.readdirSync(dir).sort(), ['ca-key.pem', 'ca.pem'], 'nothing written')
})
