import t, { type Test } from 'tap'
import path from 'node:path'
import { ConfigError } from '../../lib/config/error.js'
import { loadConfig } from '../../lib/config/load.js'
import { MAX_NODE_NAME_CHARS } from '../../lib/codec/transport-frames.js'
import { MAX_KEY_BYTES } from '../../lib/store/keys.js'

/** Loads one file holding `settings`; returns the ConfigError it must raise. */
function errorFor(t: Test, settings: unknown): { error: ConfigError, file: string } {
  const dir = t.testdir({ 'hearsay.json': typeof settings === 'string' ? settings : JSON.stringify(settings) })
  const file = path.join(dir, 'hearsay.json')
  return { error: expectConfigError(() => loadConfig({ files: [file], env: {} })), file }
}

function expectConfigError(load: () => unknown): ConfigError {
  try {
    load()
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error('expected a ConfigError, but the configuration loaded')
}

function assertOneLine(t: Test, error: ConfigError): void {
  t.notMatch(error.message, /\n/, 'the message is one line')
  t.match(error.message, /^config error: /)
}

t.test('an unknown key names the key and file and suggests the likely one', async t => {
  const { error, file } = errorFor(t, { api: { prot: 7070 } })
  assertOneLine(t, error)
  t.equal(error.key, 'api.prot')
  t.equal(error.source, file)
  t.match(error.message, `api.prot: is not a known setting (did you mean api.port?)`)
  t.match(error.message, `(from ${file})`)
})

t.test('tls settings do not exist yet and are refused', async t => {
  const { error } = errorFor(t, { tls: { enabled: true } })
  t.equal(error.key, 'tls.enabled')
})

t.test('a group of settings given as a plain value is refused', async t => {
  const { error } = errorFor(t, { api: 7070 })
  t.equal(error.key, 'api')
  t.match(error.message, /must be a JSON object/)
})

t.test('a value of the wrong type is refused, not converted', async t => {
  const port = errorFor(t, { api: { port: '7070' } })
  t.equal(port.error.key, 'api.port')
  t.match(port.error.message, `api.port: must be a port number (0-65535), got "7070" (from ${port.file})`)
  const hints = errorFor(t, { replication: { hints: 'yes' } })
  t.equal(hints.error.key, 'replication.hints')
  t.match(hints.error.message, /must be true or false, got "yes"/)
  const seeds = errorFor(t, { cluster: { seeds: '10.0.0.2:7946' } })
  t.equal(seeds.error.key, 'cluster.seeds')
})

t.test('an out-of-range value names key, value and file', async t => {
  const { error, file } = errorFor(t, { api: { port: 99999 } })
  assertOneLine(t, error)
  t.equal(error.message, `config error: api.port: must be a port number (0-65535), got 99999 (from ${file})`)
  const factor = errorFor(t, { replication: { factor: 65 } })
  t.match(factor.error.message, 'replication.factor: must be an integer from 1 to 64, got 65')
  const partitions = errorFor(t, { partitions: 0 })
  t.equal(partitions.error.key, 'partitions')
  const fractional = errorFor(t, { membership: { gossipNodes: 2.5 } })
  t.equal(fractional.error.key, 'membership.gossipNodes')
})

t.test('a file that is not valid JSON is named with the place of the mistake', async t => {
  const { error, file } = errorFor(t, '{\n  "api": { "port": 7070, }\n}\n')
  assertOneLine(t, error)
  t.equal(error.key, undefined)
  t.equal(error.source, file)
  t.match(error.message, `config error: ${file}: not valid JSON`)
  t.match(error.message, /line 2, column \d+/)
})

t.test('a file holding something other than an object is refused', async t => {
  const { error, file } = errorFor(t, '[1, 2]')
  t.equal(error.source, file)
  t.match(error.message, /must hold a JSON object/)
})

t.test('a missing config file is named', async t => {
  const dir = t.testdir({})
  const file = path.join(dir, 'nope.json')
  const error = expectConfigError(() => loadConfig({ files: [file], env: {} }))
  assertOneLine(t, error)
  t.equal(error.message, `config error: ${file}: no such file`)
})

t.test('a bad cron expression is refused with the reason', async t => {
  const { error, file } = errorFor(t, { antiEntropy: { schedule: '61 * * * * *' } })
  assertOneLine(t, error)
  t.equal(error.key, 'antiEntropy.schedule')
  t.match(error.message, /must be a node-cron expression/)
  t.match(error.message, /61/)
  t.match(error.message, `(from ${file})`)
  t.equal(errorFor(t, { antiEntropy: { schedule: 'every minute' } }).error.key, 'antiEntropy.schedule')
})

t.test('a bad consistency level is refused', async t => {
  const word = errorFor(t, { replication: { writeQuorum: 'most' } })
  t.equal(word.error.key, 'replication.writeQuorum')
  t.match(word.error.message, /must be one, quorum, all or a number from 1 to 64, got "most"/)
  t.equal(errorFor(t, { replication: { readQuorum: 0 } }).error.key, 'replication.readQuorum')
  t.equal(errorFor(t, { replication: { readQuorum: 65 } }).error.key, 'replication.readQuorum')
})

t.test('bad addresses are refused', async t => {
  const cases: Array<[unknown, string]> = [
    [{ api: { advertise: '192.168.1.11' } }, 'api.advertise'],
    [{ api: { advertise: '192.168.1.11:70000' } }, 'api.advertise'],
    [{ peer: { advertise: '0.0.0.0:7946' } }, 'peer.advertise'],
    [{ peer: { advertise: 'fe80::1:7946' } }, 'peer.advertise'],
    [{ peer: { advertise: '300.1.1.1:7946' } }, 'peer.advertise'],
    [{ cluster: { seeds: ['10.0.0.2:7946', 'node 3:7946'] } }, 'cluster.seeds'],
    [{ api: { host: 'bad host' } }, 'api.host'],
  ]
  for (const [settings, key] of cases) {
    const { error } = errorFor(t, settings)
    t.equal(error.key, key, JSON.stringify(settings))
  }
  const seeds = errorFor(t, { cluster: { seeds: ['10.0.0.2:7946', 'node 3:7946'] } })
  t.match(seeds.error.message, /entry 2 is not one/)
})

t.test('a bad environment variable names the variable', async t => {
  const error = expectConfigError(() => loadConfig({ files: [], env: { HEARSAY_API_PORT: '70x' } }))
  assertOneLine(t, error)
  t.equal(error.message, 'config error: api.port: must be a port number (0-65535), got "70x" (from env HEARSAY_API_PORT)')
  const seeds = expectConfigError(() => loadConfig({ files: [], env: { HEARSAY_CLUSTER_SEEDS: '[not json' } }))
  t.equal(seeds.key, 'cluster.seeds')
  t.equal(seeds.source, 'env HEARSAY_CLUSTER_SEEDS')
  t.equal(expectConfigError(() => loadConfig({ files: [], env: { HEARSAY_REPLICATION_HINTS: 'yes' } })).key, 'replication.hints')
})

t.test('the error names the drop-in that set the bad value', async t => {
  const dir = t.testdir({
    'hearsay.json': JSON.stringify({ api: { port: 7070 } }),
    'conf.d': { '10-api.json': JSON.stringify({ api: { port: 99999 } }) },
  })
  const error = expectConfigError(() => loadConfig({ files: [path.join(dir, 'hearsay.json')], env: {} }))
  t.equal(error.message, `config error: api.port: must be a port number (0-65535), got 99999 (from ${path.join(dir, 'conf.d', '10-api.json')})`)
})

t.test('a secret is never shown in an error', async t => {
  const { error } = errorFor(t, { cluster: { secret: 'has a space' } })
  t.equal(error.key, 'cluster.secret')
  t.notMatch(error.message, /has a space/)
  t.match(error.message, /not shown/)
})

t.test('rules between settings blame the setting set last', async t => {
  const scan = errorFor(t, { api: { maxScanLimit: 50 } })
  t.equal(scan.error.key, 'api.maxScanLimit')
  t.match(scan.error.message, 'api.defaultScanLimit (100) must not exceed api.maxScanLimit (50)')
  t.match(scan.error.message, `(from ${scan.file})`)

  const quorum = expectConfigError(() => loadConfig({ files: [], env: { HEARSAY_REPLICATION_WRITE_QUORUM: '5' } }))
  t.equal(quorum.key, 'replication.writeQuorum')
  t.equal(quorum.source, 'env HEARSAY_REPLICATION_WRITE_QUORUM')

  t.equal(errorFor(t, { membership: { probeTimeoutMs: 1000 } }).error.key, 'membership.probeTimeoutMs')
  t.equal(errorFor(t, { peer: { port: 7070 } }).error.key, 'peer.port')
})

t.test('advertising loopback to a cluster with LAN seeds is refused', async t => {
  const derived = errorFor(t, { cluster: { seeds: ['192.168.1.12:7946'] } })
  t.equal(derived.error.key, 'cluster.seeds')
  t.match(derived.error.message, /advertise loopback 127\.0\.0\.1/)
  t.match(derived.error.message, /set peer\.advertise/)

  const explicit = errorFor(t, { peer: { host: '0.0.0.0', advertise: '127.0.0.1:7946' }, cluster: { seeds: ['192.168.1.12:7946'] } })
  t.equal(explicit.error.key, 'peer.advertise', 'set in the same file as the seeds: the address is blamed')

  const dir = t.testdir({ 'ok.json': JSON.stringify({ cluster: { seeds: ['127.0.0.1:7947'] } }) })
  t.same(loadConfig({ files: [path.join(dir, 'ok.json')], env: {} }).config.cluster.seeds, ['127.0.0.1:7947'],
    'a loopback cluster (several nodes on one machine) is fine')
})

t.test('one limit, one source: key and node-name bounds are the store\'s and the wire\'s (issue 17)', async t => {
  const key = errorFor(t, { api: { maxKeyBytes: MAX_KEY_BYTES + 1 } })
  t.equal(key.error.key, 'api.maxKeyBytes', 'a key limit the store would refuse is a config error, not a 503 per request')
  const name = errorFor(t, { node: { name: 'n'.repeat(MAX_NODE_NAME_CHARS + 1) } })
  t.equal(name.error.key, 'node.name')
  t.match(name.error.message, `1 to ${MAX_NODE_NAME_CHARS} characters`)
  const dir = t.testdir({ 'hearsay.json': JSON.stringify({ node: { name: 'n'.repeat(MAX_NODE_NAME_CHARS) }, api: { maxKeyBytes: MAX_KEY_BYTES } }) })
  const { config } = loadConfig({ files: [path.join(dir, 'hearsay.json')], env: {} })
  t.equal(config.node.name.length, MAX_NODE_NAME_CHARS, 'the longest name the handshake carries is a valid node.name')
  t.equal(config.api.maxKeyBytes, MAX_KEY_BYTES)
})
