import fs from 'node:fs'
import { pathToFileURL } from 'node:url'
import { schemaDocs, type SettingDoc } from './schema.js'

/** docs/configuration.md holds the generated table between these markers. */
export const TABLE_START = '<!-- config-table:start -->'
export const TABLE_END = '<!-- config-table:end -->'

const SIZE_UNITS: ReadonlyArray<readonly [string, number]> = [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]]
const TIME_UNITS: ReadonlyArray<readonly [string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]]

function cell(text: string): string {
  return text.replace(/\|/g, '\\|')
}

/** "16777216" alone makes the reader count digits; add the size or time it stands for. */
function readable(key: string, value: number): string {
  const units = key.endsWith('Bytes') ? SIZE_UNITS : key.endsWith('Ms') ? TIME_UNITS : []
  const unit = units.find(([, size]) => value >= size && value % size === 0)
  return unit === undefined ? '' : ` (${value / unit[1]} ${unit[0]})`
}

function defaultCell(setting: SettingDoc): string {
  // Words standing in for a value ("(empty)", "the host name") are not code.
  if (typeof setting.default === 'string' && setting.defaultDoc !== setting.default) return setting.defaultDoc
  const extra = typeof setting.default === 'number' ? readable(setting.key, setting.default) : ''
  return `\`${setting.defaultDoc}\`${extra}`
}

function meaningCell(setting: SettingDoc): string {
  const sensitive = setting.sensitive ? ' Sensitive: masked by `--print-config`, never logged.' : ''
  return `${setting.doc}${sensitive} *Accepts:* ${setting.accepts}.`
}

/** The markdown table of every setting: key, environment variable, default, meaning. */
export function renderConfigurationTable(): string {
  const rows = schemaDocs().map(setting =>
    `| \`${setting.key}\` | \`${setting.env}\` | ${cell(defaultCell(setting))} | ${cell(meaningCell(setting))} |`)
  return ['| key | env var | default | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

/** The table currently between the markers of `markdown`, or undefined when a marker is missing. */
export function extractConfigurationTable(markdown: string): string | undefined {
  const start = markdown.indexOf(TABLE_START)
  const end = markdown.indexOf(TABLE_END)
  if (start === -1 || end < start) return undefined
  return markdown.slice(start + TABLE_START.length, end).trim()
}

/** `markdown` with the table between the markers replaced by a freshly rendered one. */
export function spliceConfigurationTable(markdown: string): string {
  const start = markdown.indexOf(TABLE_START)
  const end = markdown.indexOf(TABLE_END)
  if (start === -1 || end < start) throw new Error(`the document has no ${TABLE_START} … ${TABLE_END} markers`)
  return `${markdown.slice(0, start + TABLE_START.length)}\n${renderConfigurationTable()}\n${markdown.slice(end)}`
}

// After `npm run build`: `node dist/lib/config/docs.js docs/configuration.md` regenerates the table.
const script = process.argv[1]
if (script !== undefined && import.meta.url === pathToFileURL(script).href) {
  const file = process.argv[2] ?? 'docs/configuration.md'
  fs.writeFileSync(file, spliceConfigurationTable(fs.readFileSync(file, 'utf8')))
}
