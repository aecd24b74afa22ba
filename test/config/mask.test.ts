import t from 'tap'
import { loadConfig } from '../../lib/config/load.js'
import { maskSecrets } from '../../lib/config/mask.js'

t.test('set secrets print as [masked] and nothing else changes', async t => {
  const { config } = loadConfig({ files: [], env: { HEARSAY_CLUSTER_SECRET: 's3cret-cluster', HEARSAY_API_TOKEN: 'tok-123' } })
  const masked = maskSecrets(config)
  t.equal(masked.cluster.secret, '[masked]')
  t.equal(masked.api.token, '[masked]')
  t.notMatch(JSON.stringify(masked), /s3cret-cluster|tok-123/)
  t.equal(masked.api.port, config.api.port)
  t.equal(masked.store.tombstoneGraceMs, config.store.tombstoneGraceMs)
  t.equal(config.cluster.secret, 's3cret-cluster', 'the loaded configuration itself is untouched')
})

t.test('unset secrets stay empty so the reader can tell they are off', async t => {
  const masked = maskSecrets(loadConfig({ files: [], env: {} }).config)
  t.equal(masked.cluster.secret, '')
  t.equal(masked.api.token, '')
})
