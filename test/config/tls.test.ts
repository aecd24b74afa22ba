import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { loadConfig } from '../../lib/config/load.js'
import { maskSecrets } from '../../lib/config/mask.js'

const json = (value: unknown): string => JSON.stringify(value, null, 2)
const load = (file: string, env: NodeJS.ProcessEnv = {}) => loadConfig({ files: [file], env }).config

t.test('TLS file paths resolve against the directory of the config file that set them', async t => {
  const dir = t.testdir({
    etc: { 'main.json': json({ tls: { ca: 'tls/ca.pem', cert: '/srv/node.pem' } }) },
    other: { 'over.json': json({ tls: { key: '../keys/node-key.pem' } }) },
  })
  const config = loadConfig({ files: [path.join(dir, 'etc/main.json'), path.join(dir, 'other/over.json')], env: {} }).config
  t.equal(config.tls.ca, path.join(dir, 'etc/tls/ca.pem'))
  t.equal(config.tls.cert, '/srv/node.pem', 'absolute paths stay')
  t.equal(config.tls.key, path.join(dir, 'keys/node-key.pem'))
  t.equal(config.tls.peer, 'off')
  t.equal(config.tls.api, 'off')
  t.equal(config.tls.minVersion, 'TLSv1.2')
})

t.test('TLS file paths from the environment resolve against the working directory', async t => {
  const config = loadConfig({ files: [], env: { HEARSAY_TLS_CA: 'certs/ca.pem' } }).config
  t.equal(config.tls.ca, path.resolve('certs/ca.pem'))
})

t.test('TLS modes take only their words, and nothing below TLS 1.2', async t => {
  const dir = t.testdir({})
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ tls: { minVersion: 'TLSv1.1' } }, /tls\.minVersion: must be one of TLSv1\.2, TLSv1\.3, got "TLSv1\.1"/],
    [{ tls: { peer: true } }, /tls\.peer: must be one of off, on, got true/],
    [{ tls: { api: 'required' } }, /tls\.api: must be one of off, on, mutual/],
  ]
  for (const [settings, message] of cases) {
    const file = path.join(dir, 'bad.json')
    fs.writeFileSync(file, json(settings))
    t.throws(() => load(file), { name: 'ConfigError', message }, String(message))
  }
  t.throws(() => loadConfig({ files: [], env: { HEARSAY_TLS_MIN_VERSION: 'TLSv1' } }), /tls\.minVersion: must be one of TLSv1\.2, TLSv1\.3, got "TLSv1" \(from env HEARSAY_TLS_MIN_VERSION\)/)
})

t.test('tls.peer on or tls.api on needs the CA, certificate and key', async t => {
  const dir = t.testdir({
    'peer.json': json({ tls: { peer: 'on', ca: 'ca.pem', cert: 'n.pem' } }),
    'api.json': json({ tls: { api: 'mutual' } }),
    'complete.json': json({ tls: { api: 'on', ca: 'ca.pem', cert: 'n.pem', key: 'n-key.pem' } }),
  })
  t.throws(() => load(path.join(dir, 'peer.json')), /config error: tls\.(key|peer): tls\.peer is on but tls\.key is not set; make the files with `hearsay tls ca create`/)
  t.throws(() => load(path.join(dir, 'api.json')), /tls\.api is mutual but tls\.ca is not set/)
  t.equal(load(path.join(dir, 'complete.json')).tls.api, 'on', 'files are checked by the daemon, not the loader')
})

t.test('a secret file is read into cluster.secret and a token file into api.token, trimmed', async t => {
  const dir = t.testdir({ 'hearsay.json': json({ cluster: { secretFile: 'secret' }, api: { tokenFile: 'token' } }) })
  fs.writeFileSync(path.join(dir, 'secret'), 's3cret-value\n', { mode: 0o600 })
  fs.writeFileSync(path.join(dir, 'token'), '  tok-123  \n', { mode: 0o400 })
  const config = load(path.join(dir, 'hearsay.json'))
  t.equal(config.cluster.secret, 's3cret-value')
  t.equal(config.cluster.secretFile, path.join(dir, 'secret'))
  t.equal(config.api.token, 'tok-123')
  const masked = maskSecrets(config)
  t.equal(masked.cluster.secret, '[masked]', '--print-config still masks the value read')
  t.equal(masked.cluster.secretFile, path.join(dir, 'secret'), 'the path is no secret')
})

t.test('a secret file that group or other users can read is refused, naming the file and its mode', async t => {
  const dir = t.testdir({ 'hearsay.json': json({ cluster: { secretFile: 'secret' } }) })
  const secret = path.join(dir, 'secret')
  fs.writeFileSync(secret, 'abc\n')
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    fs.chmodSync(secret, mode)
    t.throws(() => load(path.join(dir, 'hearsay.json')), {
      name: 'ConfigError',
      message: `config error: cluster.secretFile: ${secret} has mode 0${mode.toString(8)}, so users other than its owner can read the secret; run chmod 600 ${secret} (from ${path.join(dir, 'hearsay.json')})`,
    }, mode.toString(8))
  }
})

t.test('a systemd credential (0440 root:root in $CREDENTIALS_DIRECTORY) is accepted there and nowhere else', { skip: process.getuid?.() !== 0 ? 'needs root to own files as root' : false }, async t => {
  const dir = t.testdir({ credentials: {}, elsewhere: {} })
  const credentials = path.join(dir, 'credentials')
  for (const where of ['credentials', 'elsewhere']) {
    const file = path.join(dir, where, 'cluster-secret')
    fs.writeFileSync(file, 'from-systemd')
    fs.chmodSync(file, 0o440)
    fs.chownSync(file, 0, 0)
  }
  const env = { CREDENTIALS_DIRECTORY: credentials, HEARSAY_CLUSTER_SECRET_FILE: path.join(credentials, 'cluster-secret') }
  t.equal(loadConfig({ files: [], env }).config.cluster.secret, 'from-systemd')
  t.throws(() => loadConfig({ files: [], env: { ...env, HEARSAY_CLUSTER_SECRET_FILE: path.join(dir, 'elsewhere', 'cluster-secret') } }), /has mode 0440/)
  fs.chmodSync(path.join(credentials, 'cluster-secret'), 0o444)
  t.throws(() => loadConfig({ files: [], env }), /has mode 0444/, 'other users never')
})

t.test('other secret file problems are one line each, and never show the contents', async t => {
  const dir = t.testdir({ 'sub': {} })
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name)
    fs.writeFileSync(p, text, { mode: 0o600 })
    return p
  }
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ HEARSAY_CLUSTER_SECRET_FILE: path.join(dir, 'none') }, /cluster\.secretFile: cannot read .*none: it does not exist/],
    [{ HEARSAY_CLUSTER_SECRET_FILE: path.join(dir, 'sub') }, /is not a regular file/],
    [{ HEARSAY_API_TOKEN_FILE: file('empty', '\n') }, /api\.tokenFile: .*empty is empty; put the secret in it or unset api\.tokenFile/],
    [{ HEARSAY_API_TOKEN_FILE: file('spaces', 'two words') }, /api\.tokenFile: .*spaces does not hold a valid api\.token: it must be empty or up to 1024 printable ASCII characters without spaces \(from env HEARSAY_API_TOKEN_FILE\)$/],
    [{ HEARSAY_CLUSTER_SECRET: 'inline', HEARSAY_CLUSTER_SECRET_FILE: file('s', 'x') }, /cluster\.secret and cluster\.secretFile are both set; keep one/],
    [{ HEARSAY_API_TOKEN: 'inline', HEARSAY_API_TOKEN_FILE: file('tk', 'x') }, /api\.token and api\.tokenFile are both set/],
  ]
  for (const [env, message] of cases) {
    const error = (() => { try { loadConfig({ files: [], env }); return undefined } catch (e) { return e as Error } })()
    t.match(error?.message, message, String(message))
    t.notMatch(error?.message, /two words/, 'contents not shown')
  }
})

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')

t.test('the LAN TLS example loads with its secret files beside it', async t => {
  const dir = t.testdir({})
  fs.copyFileSync(path.join(repoRoot, 'config/examples/lan-node-tls.json'), path.join(dir, 'hearsay.json'))
  fs.writeFileSync(path.join(dir, 'cluster-secret'), 'lan-secret\n', { mode: 0o600 })
  fs.writeFileSync(path.join(dir, 'api-token'), 'lan-token\n', { mode: 0o600 })
  const config = load(path.join(dir, 'hearsay.json'))
  t.equal(config.tls.ca, path.join(dir, 'tls/ca.pem'))
  t.equal(config.tls.cert, path.join(dir, 'tls/lan-node-1.pem'))
  t.equal(config.tls.peer, 'on')
  t.equal(config.tls.api, 'on')
  t.equal(config.cluster.secret, 'lan-secret')
  t.equal(config.api.token, 'lan-token')
})

t.test('the one-machine TLS examples point at the certificates docs/operations.md makes', async t => {
  for (const n of [1, 2, 3]) {
    const config = load(path.join(repoRoot, `config/examples/tls-local/node-${n}.json`))
    t.equal(config.node.name, `node-${n}`)
    t.equal(config.tls.ca, path.join(repoRoot, 'data/tls-local/certs/ca.pem'))
    t.equal(config.tls.cert, path.join(repoRoot, `data/tls-local/certs/node-${n}.pem`))
    t.equal(config.tls.key, path.join(repoRoot, `data/tls-local/certs/node-${n}-key.pem`))
    t.equal(config.api.port, 7070 + n)
  }
})
