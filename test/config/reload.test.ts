import t from 'tap'
import { loadConfig } from '../../lib/config/load.js'
import { diffReloadable, reloadableKeys } from '../../lib/config/reload.js'

t.test('only log.level is reloadable for now', async t => {
  t.same(reloadableKeys, ['log.level'])
})

t.test('a changed log level is reported as reloadable', async t => {
  const old = loadConfig({ files: [], env: {} }).config
  const next = loadConfig({ files: [], env: { HEARSAY_LOG_LEVEL: 'debug' } }).config
  t.same(diffReloadable(old, next), { reloadable: ['log.level'], restartNeeded: [] })
})

t.test('other changes are listed as needing a restart, seeds compared by content', async t => {
  const env = { HEARSAY_PEER_ADVERTISE: '10.0.0.1:7946', HEARSAY_CLUSTER_SEEDS: '10.0.0.2:7946' }
  const old = loadConfig({ files: [], env }).config
  const same = loadConfig({ files: [], env }).config
  t.same(diffReloadable(old, same), { reloadable: [], restartNeeded: [] }, 'equal configurations differ in nothing')

  const next = loadConfig({
    files: [],
    env: { ...env, HEARSAY_CLUSTER_SEEDS: '10.0.0.3:7946', HEARSAY_MEMBERSHIP_PROBE_INTERVAL_MS: '2000', HEARSAY_LOG_LEVEL: 'warn' },
  }).config
  t.same(diffReloadable(old, next), {
    reloadable: ['log.level'],
    restartNeeded: ['cluster.seeds', 'membership.probeIntervalMs'],
  })
})
