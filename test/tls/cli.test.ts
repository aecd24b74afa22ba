import { runCliText } from '../helpers/cli.js'
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const run = runCliText

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearsay-tls-cli-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('hearsay tls makes a CA, a node certificate with repeated and listed addresses, and a client certificate', async t => {
  const dir = tempDir(t)
  const ca = await run(['tls', 'ca', 'create', '--dir', path.join(dir, 'ca'), '--days', '10'])
  t.equal(ca.code, 0, ca.stderr)
  t.match(ca.stdout, /wrote .*ca\.pem/)
  const node = await run(['tls', 'cert', 'create', '--ca', path.join(dir, 'ca'), '--name', 'node-1', '--ip', '192.168.1.11,127.0.0.1', '--ip', '::1', '--dns', 'node-1.lan', '--days', '5'])
  t.equal(node.code, 0, node.stderr)
  const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'ca', 'node-1.pem')))
  for (const ip of ['192.168.1.11', '127.0.0.1', '::1']) t.equal(cert.checkIP(ip), ip)
  t.equal(cert.checkHost('node-1.lan'), 'node-1.lan')
  t.match(node.stdout, new RegExp(`serial ${cert.serialNumber}`))
  t.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 5 * 86_400_000)

  const client = await run(['tls', 'cert', 'create', '--ca', path.join(dir, 'ca'), '--name', 'ops', '--client', '--out', path.join(dir, 'clients'), '--json'])
  t.equal(client.code, 0, client.stderr)
  const written = JSON.parse(client.stdout) as { certPath: string; keyPath: string; serial: string }
  t.equal(written.certPath, path.join(dir, 'clients', 'ops.pem'))
  t.same(new X509Certificate(fs.readFileSync(written.certPath)).keyUsage, ['1.3.6.1.5.5.7.3.2'])
})

t.test('hearsay tls refuses bad arguments (exit 2) and existing files (exit 1) with one line', async t => {
  const dir = tempDir(t)
  t.equal((await run(['tls', 'ca', 'create', '--dir', dir])).code, 0)
  const cases: Array<[string[], number, RegExp]> = [
    [['tls'], 2, /say what to create/],
    [['tls', 'key', 'create'], 2, /unknown tls command "key create"/],
    [['tls', 'ca', 'create'], 2, /needs --dir DIR/],
    [['tls', 'ca', 'create', '--dir', dir], 1, /ca\.pem already exists; remove it or pass --force/],
    [['tls', 'ca', 'create', '--dir', dir, '--ip', '10.0.0.1'], 2, /option --ip does not apply to tls ca create/],
    [['tls', 'cert', 'create', '--name', 'n', '--ip', '10.0.0.1'], 2, /needs --ca DIR/],
    [['tls', 'cert', 'create', '--ca', dir, '--ip', '10.0.0.1'], 2, /needs --name NAME/],
    [['tls', 'cert', 'create', '--ca', dir, '--name', 'n', '--ip', '10.0.0.300'], 2, /"10\.0\.0\.300" is not an IP address/],
    [['tls', 'cert', 'create', '--ca', dir, '--name', 'n', '--ip', '10.0.0.1', '--days', 'ten'], 2, /--days must be a whole number of days, got "ten"/],
    [['tls', 'cert', 'create', '--ca', dir, '--name', 'n', '--ip', '10.0.0.1', '--days', '0'], 2, /days must be a whole number from 1/],
    [['tls', 'cert', 'create', '--ca', dir, '--name', 'n', '--client', '--ip', '10.0.0.1'], 2, /leave out --ip and --dns/],
    [['tls', 'cert', 'create', '--ca', path.join(dir, 'nope'), '--name', 'n', '--ip', '10.0.0.1'], 1, /cannot read the CA certificate/],
    [['tls', 'ca', 'create', '--dir'], 2, /argument missing/],
  ]
  for (const [argv, code, message] of cases) {
    const result = await run(argv)
    t.equal(result.code, code, argv.join(' '))
    t.match(result.stderr, message, argv.join(' '))
    t.match(result.stderr, /^hearsay tls: [^\n]+\n$/, 'one line')
  }
  t.same(fs.readdirSync(dir).sort(), ['ca-key.pem', 'ca.pem'], 'no stray files')
})

t.test('hearsay --help lists the tls command and hearsay tls --help explains it', async t => {
  t.match((await run(['--help'])).stdout, /tls ca create\|cert create/)
  const help = await run(['tls', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /hearsay tls cert create --ca DIR --name NAME --ip IP/)
})
