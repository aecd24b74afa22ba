import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { extractConfigurationTable, renderConfigurationTable, spliceConfigurationTable } from '../../lib/config/docs.js'
import { schemaDocs } from '../../lib/config/schema.js'

const docFile = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/configuration.md')

t.test('docs/configuration.md shows exactly the table the schema renders', async t => {
  const table = extractConfigurationTable(fs.readFileSync(docFile, 'utf8'))
  t.equal(table, renderConfigurationTable(),
    'regenerate with: npm run build && node dist/lib/config/docs.js docs/configuration.md')
})

t.test('the table has one row per setting, with its env var', async t => {
  const rows = renderConfigurationTable().split('\n').slice(2)
  const settings = schemaDocs()
  t.equal(rows.length, settings.length)
  for (const [i, setting] of settings.entries()) {
    t.match(rows[i], `| \`${setting.key}\` | \`${setting.env}\` |`)
  }
})

t.test('the default shown does not depend on the machine the docs were built on', async t => {
  t.match(renderConfigurationTable(), '| `node.name` | `HEARSAY_NODE_NAME` | the host name |')
})

t.test('pipes inside cells are escaped so the table keeps its columns', async t => {
  for (const row of renderConfigurationTable().split('\n')) {
    t.equal(row.replace(/\\\|/g, '').split('|').length, 6, row)
  }
})

t.test('splicing replaces only the text between the markers', async t => {
  const doc = 'intro\n<!-- config-table:start -->\nold\n<!-- config-table:end -->\noutro\n'
  const spliced = spliceConfigurationTable(doc)
  t.ok(spliced.startsWith('intro\n<!-- config-table:start -->\n| key |'))
  t.ok(spliced.endsWith('\n<!-- config-table:end -->\noutro\n'))
  t.equal(extractConfigurationTable(spliced), renderConfigurationTable())
  t.throws(() => spliceConfigurationTable('no markers'), /markers/)
})
