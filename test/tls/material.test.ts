import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createCa, createCert } from '../../lib/tls/create.js'
import { inspectTlsMaterial, loadTlsMaterial, TlsMaterialHolder, type TlsMaterial, type TlsPaths } from '../../lib/tls/material.js'
import { canonicalIp, certificateNames, namesNode } from '../../lib/tls/names.js'
import { X509Certificate } from 'node:crypto'

const DAY_MS = 86_400_000

async function cluster(t: { teardown(fn: () => void): void }): Promise<{ dir: string; paths: (name: string) => TlsPaths }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearsay-tls-material-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  await createCa({ dir })
  return {
    dir,
    paths: name => ({ caPath: path.join(dir, 'ca.pem'), certPath: path.join(dir, `${name}.pem`), keyPath: path.join(dir, `${name}-key.pem`) }),
  }
}

t.test('good material loads with its serial, validity and names', async t => {
  const { dir, paths } = await cluster(t)
  const created = await createCert({ caDir: dir, name: 'node-1', ips: ['127.0.0.1', '0:0:0:0:0:0:0:1'], dns: ['node-1.lan'] })
  const material = loadTlsMaterial(paths('node-1'), Date.now())
  t.equal(material.serial, created.serial)
  t.ok(material.notBeforeMs < Date.now() && material.notAfterMs > Date.now())
  t.same(material.names, { commonName: 'node-1', dns: ['node-1', 'node-1.lan'], ips: ['127.0.0.1', '::1'] })
  t.ok(material.key.toString().includes('PRIVATE KEY'))
  t.ok(namesNode(material.names, 'node-1'))
  t.notOk(namesNode(material.names, 'Node-1'), 'names are compared exactly')
  t.notOk(namesNode(material.names, 'node-2'))
})

t.test('a node is named by its CN alone when the name is no host name', async t => {
  const { dir } = await cluster(t)
  const created = await createCert({ caDir: dir, name: 'rack 1/a'.replace('/', '-'), ips: ['10.0.0.1'] })
  const names = certificateNames(new X509Certificate(fs.readFileSync(created.certPath)))
  t.same(names, { commonName: 'rack 1-a', dns: [], ips: ['10.0.0.1'] })
  t.ok(namesNode(names, 'rack 1-a'))
})

t.test('IPv6 addresses compare in one spelling', async t => {
  t.equal(canonicalIp('FD00:0:0:0:0:0:0:11'), 'fd00::11')
  t.equal(canonicalIp('10.1.2.3'), '10.1.2.3')
})

t.test('each kind of bad material is refused with a sentence naming the file', async t => {
  const { dir, paths } = await cluster(t)
  const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearsay-tls-other-'))
  t.teardown(() => fs.rmSync(otherDir, { recursive: true, force: true }))
  await createCa({ dir: otherDir })
  await createCert({ caDir: dir, name: 'a', ips: ['10.0.0.1'] })
  await createCert({ caDir: dir, name: 'b', ips: ['10.0.0.2'] })
  await createCert({ caDir: otherDir, name: 'x', ips: ['10.0.0.1'], outDir: dir })
  await createCert({ caDir: dir, name: 'soon', ips: ['10.0.0.1'], validFrom: new Date(Date.now() + 2 * DAY_MS) })
  await createCert({ caDir: dir, name: 'old', ips: ['10.0.0.1'], validFrom: new Date(Date.now() - 3 * DAY_MS), days: 1 })
  await createCert({ caDir: dir, name: 'cli', client: true })
  fs.writeFileSync(path.join(dir, 'junk.pem'), 'not a certificate\n')
  const a = paths('a')
  const cases: Array<[string, TlsPaths, string, RegExp]> = [
    ['missing cert', { ...a, certPath: path.join(dir, 'none.pem') }, 'unreadable', /^cannot read tls\.cert .*none\.pem: it does not exist/],
    ['missing key', { ...a, keyPath: path.join(dir, 'none-key.pem') }, 'unreadable', /^cannot read tls\.key .*none-key\.pem: it does not exist/],
    ['directory as CA', { ...a, caPath: dir }, 'unreadable', /^cannot read tls\.ca .*: it is a directory/],
    ['unset CA', { ...a, caPath: '' }, 'unreadable', /^tls\.ca is not set/],
    ['not PEM', { ...a, certPath: path.join(dir, 'junk.pem') }, 'not-pem', /^tls\.cert .*junk\.pem holds no PEM certificate/],
    ['key of another cert', { ...a, keyPath: paths('b').keyPath }, 'key-mismatch', /^tls\.key .*b-key\.pem does not match the certificate in tls\.cert .*a\.pem/],
    ['cert of another CA', paths('x'), 'not-chained', /^tls\.cert .*x\.pem does not chain to the CA in tls\.ca .*ca\.pem \(issuer CN=hearsay CA [0-9a-f]+\)/],
    ['not yet valid', paths('soon'), 'not-yet-valid', /^tls\.cert .*soon\.pem is not yet valid \(valid from 20\d\d-\d\d-\d\dT.*Z to 20\d\d-.*Z\)/],
    ['expired', paths('old'), 'expired', /^tls\.cert .*old\.pem has expired \(valid from .*Z to .*Z\)/],
    ['client cert', paths('cli'), 'wrong-usage', /^tls\.cert .*cli\.pem is not a node certificate/],
    ['node cert as CA', { ...a, caPath: paths('b').certPath }, 'not-ca', /^tls\.ca .*b\.pem holds a certificate that is not a CA/],
  ]
  for (const [what, p, problem, message] of cases) {
    t.throws(() => loadTlsMaterial(p, Date.now()), { name: 'TlsMaterialError', problem, message }, what)
  }
})

t.test('inspection lists every problem at once', async t => {
  const { dir, paths } = await cluster(t)
  await createCert({ caDir: dir, name: 'a', ips: ['10.0.0.1'] })
  await createCert({ caDir: dir, name: 'b', ips: ['10.0.0.2'] })
  const { material, problems } = inspectTlsMaterial({ ...paths('a'), keyPath: paths('b').keyPath }, Date.now() + 400 * DAY_MS)
  t.equal(material, undefined)
  t.same(problems.map(p => p.problem), ['key-mismatch', 'expired'])
})

t.test('the holder swaps in good material on reload and keeps the old on a bad one', async t => {
  const { dir, paths } = await cluster(t)
  const first = await createCert({ caDir: dir, name: 'n', ips: ['10.0.0.1'] })
  const holder = new TlsMaterialHolder(paths('n'), loadTlsMaterial(paths('n'), Date.now()), () => Date.now())
  const seen: TlsMaterial[] = []
  const unsubscribe = holder.onChange(m => seen.push(m))

  const second = await createCert({ caDir: dir, name: 'n', ips: ['10.0.0.1'], force: true })
  const ok = holder.reload()
  t.ok(ok.ok)
  t.equal(holder.current().serial, second.serial)
  t.not(second.serial, first.serial)
  t.same(seen.map(m => m.serial), [second.serial])

  // A new certificate without its key: the pair no longer matches.
  await createCert({ caDir: dir, name: 'n', ips: ['10.0.0.1'], force: true, outDir: path.join(dir, 'next') })
  fs.copyFileSync(path.join(dir, 'next', 'n.pem'), paths('n').certPath)
  const bad = holder.reload()
  t.same(bad, { ok: false, reason: bad.ok ? '' : bad.reason })
  t.match(bad.ok ? '' : bad.reason, /does not match the certificate/)
  t.equal(holder.current().serial, second.serial, 'old material kept')
  t.equal(seen.length, 1, 'listeners not told')

  unsubscribe()
  fs.copyFileSync(path.join(dir, 'next', 'n-key.pem'), paths('n').keyPath)
  t.ok(holder.reload().ok)
  t.equal(seen.length, 1, 'an unsubscribed listener is not told')
})
