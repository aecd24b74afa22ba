import t from 'tap'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../lib/config/load.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const json = (value: unknown): string => JSON.stringify(value, null, 2)

t.test('with no files and no environment the defaults are the npm start node', async t => {
  const { config, files } = loadConfig({ files: [], env: {} })
  t.same(files, [])
  t.equal(config.node.name, os.hostname())
  t.equal(config.node.dataDir, './data')
  t.equal(config.api.host, '127.0.0.1')
  t.equal(config.api.port, 7070)
  t.equal(config.peer.port, 7946)
  t.same(config.cluster.seeds, [])
  t.equal(config.replication.writeQuorum, 'quorum')
  t.equal(config.replication.readQuorum, 1)
  t.equal(config.partitions, 256)
  t.equal(config.membership.reapAfterMs, 86_400_000)
  t.equal(config.antiEntropy.schedule, '*/30 * * * * *')
  t.equal(config.store.mapSizeBytes, 4 * 1024 ** 3)
  t.equal(config.log.level, 'info')
})

t.test('settings merge in order: file, later file, conf.d in name order, then environment', async t => {
  const dir = t.testdir({
    'main.json': json({ api: { port: 7100, maxScanLimit: 500 }, log: { level: 'debug' }, node: { name: 'main' } }),
    'later.json': json({ api: { port: 7200 }, node: { name: 'later' } }),
    'conf.d': {
      '20-second.json': json({ node: { name: 'second-drop-in' }, cluster: { name: 'from-20' } }),
      '10-first.json': json({ node: { name: 'first-drop-in' }, cluster: { name: 'from-10' }, partitions: 64 }),
      'notes.txt': 'not json, not read',
      '.hidden.json': '{ broken',
    },
  })
  const main = path.join(dir, 'main.json')
  const later = path.join(dir, 'later.json')
  const { config, files } = loadConfig({ files: [main, later], env: { HEARSAY_CLUSTER_NAME: 'from-env' } })

  t.same(files, [main, later, path.join(dir, 'conf.d', '10-first.json'), path.join(dir, 'conf.d', '20-second.json')],
    'drop-ins come after the given files, in name order; other files are ignored')
  t.equal(config.api.port, 7200, 'a later file overrides an earlier one')
  t.equal(config.api.maxScanLimit, 500, 'settings a later file does not mention keep their value')
  t.equal(config.log.level, 'debug')
  t.equal(config.node.name, 'second-drop-in', 'the last drop-in in name order wins over files and earlier drop-ins')
  t.equal(config.partitions, 64)
  t.equal(config.cluster.name, 'from-env', 'the environment overrides every file')
})

t.test('conf.d is only looked for beside the first file', async t => {
  const dir = t.testdir({
    'main.json': json({}),
    extra: { 'extra.json': json({}), 'conf.d': { '10-x.json': json({ partitions: 8 }) } },
  })
  const { config, files } = loadConfig({ files: [path.join(dir, 'main.json'), path.join(dir, 'extra', 'extra.json')], env: {} })
  t.equal(files.length, 2)
  t.equal(config.partitions, 256)
})

t.test('environment variables are converted to the setting type', async t => {
  const { config } = loadConfig({
    files: [],
    env: {
      HEARSAY_API_PORT: '7071',
      HEARSAY_NODE_DATA_DIR: '/srv/hearsay',
      HEARSAY_REPLICATION_HINTS: 'false',
      HEARSAY_REPLICATION_WRITE_QUORUM: '2',
      HEARSAY_REPLICATION_READ_QUORUM: 'all',
      HEARSAY_CLOCK_OFFSET_MS: '-250',
      HEARSAY_STORE_TOMBSTONE_GRACE: '36h',
      HEARSAY_CLUSTER_SEEDS: '10.0.0.2:7946, node3.lan:7946',
      HEARSAY_PEER_ADVERTISE: '10.0.0.1:7946',
    },
  })
  t.equal(config.api.port, 7071)
  t.equal(config.node.dataDir, '/srv/hearsay')
  t.equal(config.replication.hints, false)
  t.equal(config.replication.writeQuorum, 2)
  t.equal(config.replication.readQuorum, 'all')
  t.equal(config.clock.offsetMs, -250)
  t.equal(config.store.tombstoneGraceMs, 36 * 3_600_000)
  t.same(config.cluster.seeds, ['10.0.0.2:7946', 'node3.lan:7946'])
})

/** Seeds on the LAN need this node to advertise a LAN address (see errors.test.ts). */
const LAN_ADVERTISE = { HEARSAY_PEER_ADVERTISE: '10.0.0.1:7946' }

t.test('HEARSAY_CLUSTER_SEEDS also takes a JSON array, and empty means no seeds', async t => {
  const fromJson = loadConfig({ files: [], env: { ...LAN_ADVERTISE, HEARSAY_CLUSTER_SEEDS: '["[fe80::1]:7946","10.0.0.3:7946"]' } })
  t.same(fromJson.config.cluster.seeds, ['[fe80::1]:7946', '10.0.0.3:7946'])
  const empty = loadConfig({ files: [], env: { HEARSAY_CLUSTER_SEEDS: '' } })
  t.same(empty.config.cluster.seeds, [])
})

t.test('the process environment and arguments are not read behind the caller\'s back', async t => {
  const saved = process.env.HEARSAY_API_PORT
  process.env.HEARSAY_API_PORT = '9999'
  t.teardown(() => {
    if (saved === undefined) delete process.env.HEARSAY_API_PORT
    else process.env.HEARSAY_API_PORT = saved
  })
  t.equal(loadConfig({ files: [], env: {} }).config.api.port, 7070)
})

t.test('HEARSAY_ variables that name no setting are reported, not applied', async t => {
  const { unknownEnv } = loadConfig({ files: [], env: { HEARSAY_API_PROT: '1', HEARSAY_NODE: 'http://x', PATH: '/bin' } })
  t.same(unknownEnv, ['HEARSAY_API_PROT', 'HEARSAY_NODE'])
})

t.test('the tombstone grace is exposed in milliseconds beside the value as written', async t => {
  const dir = t.testdir({ 'a.json': json({ store: { tombstoneGrace: '15m' } }), 'b.json': json({ store: { tombstoneGrace: 5000 } }) })
  const minutes = loadConfig({ files: [path.join(dir, 'a.json')], env: {} }).config.store
  t.equal(minutes.tombstoneGrace, '15m')
  t.equal(minutes.tombstoneGraceMs, 15 * 60_000)
  t.equal(loadConfig({ files: [path.join(dir, 'b.json')], env: {} }).config.store.tombstoneGraceMs, 5000)
  t.equal(loadConfig({ files: [], env: {} }).config.store.tombstoneGraceMs, 10 * 86_400_000)
})

t.test('the loaded configuration is deeply frozen', async t => {
  const { config } = loadConfig({ files: [], env: { ...LAN_ADVERTISE, HEARSAY_CLUSTER_SEEDS: '10.0.0.2:7946' } })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.api))
  t.ok(Object.isFrozen(config.cluster.seeds))
  t.throws(() => { (config.api as { port: number }).port = 1 })
})

t.test('an empty config file counts as no settings', async t => {
  const dir = t.testdir({ 'empty.json': '\n' })
  t.equal(loadConfig({ files: [path.join(dir, 'empty.json')], env: {} }).config.api.port, 7070)
})

t.test('the shipped configurations load cleanly', async t => {
  const start = loadConfig({ files: [path.join(repoRoot, 'config/hearsay.json')], env: {} })
  t.equal(start.config.node.name, 'hearsay-1')
  t.equal(start.config.node.dataDir, './data')
  t.equal(start.config.api.port, 7070)
  t.equal(start.config.peer.port, 7946)

  const lan = loadConfig({ files: [path.join(repoRoot, 'config/examples/lan-node.json')], env: {} })
  t.equal(lan.files.length, 2, 'the example drop-in is picked up beside the example file')
  t.equal(lan.config.log.level, 'warn')
  t.equal(lan.config.peer.advertise, '192.168.1.11:7946')
  t.equal(lan.config.api.advertise, '192.168.1.11:7070')
  t.equal(lan.config.node.dataDir, '/var/lib/hearsay')
  t.ok(lan.config.cluster.seeds.length > 0)
})
