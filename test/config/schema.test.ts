import t from 'tap'
import { schemaDocs, settings } from '../../lib/config/schema.js'

const snake = (key: string): string => `HEARSAY_${key.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`

t.test('every setting is documented and has a format and a default', async t => {
  t.ok(settings.size > 40)
  for (const doc of schemaDocs()) {
    t.ok(doc.doc.length > 10, `${doc.key} has a doc`)
    t.ok(doc.accepts.length > 0, `${doc.key} says what it accepts`)
    t.not(doc.default, undefined, `${doc.key} has a default`)
  }
})

t.test('every environment variable is HEARSAY_ plus the key in upper snake case', async t => {
  for (const doc of schemaDocs()) t.equal(doc.env, snake(doc.key))
  t.equal(settings.get('node.dataDir')?.env, 'HEARSAY_NODE_DATA_DIR')
})

t.test('only the cluster secret and the API token are sensitive', async t => {
  t.same(schemaDocs().filter(doc => doc.sensitive).map(doc => doc.key).sort(), ['api.token', 'cluster.secret'])
})

t.test('the TLS settings are the ones the TLS contract names, off by default', async t => {
  t.same([...settings.keys()].filter(key => key.startsWith('tls.')), ['tls.ca', 'tls.cert', 'tls.key', 'tls.peer', 'tls.api', 'tls.minVersion'])
  t.equal(settings.get('tls.peer')?.default, 'off')
  t.equal(settings.get('tls.api')?.default, 'off')
  t.equal(settings.get('tls.minVersion')?.default, 'TLSv1.2')
  t.same(settings.get('tls.minVersion')?.values, ['TLSv1.2', 'TLSv1.3'], 'nothing weaker than TLS 1.2 can be asked for')
})

t.test('the clock offset is documented as for testing only', async t => {
  t.match(settings.get('clock.offsetMs')?.doc, /TESTING ONLY/)
})
