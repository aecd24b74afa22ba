import convict from 'convict'
import { validate as isCronExpression, validateDetailed as explainCronExpression } from 'node-cron'
// One declaration of the node-name bound: what the handshake carries is what config accepts.
import { MAX_NODE_NAME_CHARS } from '../codec/transport-frames.js'
import { MAX_NUMERIC_LEVEL, parseConsistencyLevel } from '../replication/consistency.js'
import { isBindHost, isUnspecifiedHost, parseHostPort } from './address.js'
import { DURATION_SYNTAX, parseDurationMs } from './duration.js'
import type { SettingSpec } from './types.js'

/**
 * The value formats of the schema, registered with convict by name. Each `validate` throws an
 * Error whose message completes "<key>: …"; the loader adds the offending value and its source.
 * `coerce` turns an environment variable's text into the JSON type the setting holds and leaves
 * text it cannot convert unchanged, so that `validate` reports it instead of a silent NaN.
 */
interface HearsayFormat {
  validate(value: unknown, spec: SettingSpec<unknown>): void
  coerce?(text: string): unknown
  /** The accepted values, for docs/configuration.md. */
  describe(spec: SettingSpec<unknown>): string
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** More seeds than this is a typo or a generated file gone wrong; any few live ones suffice to join. */
export const MAX_SEEDS = 64
const MAX_PORT = 65535
const MAX_PATH_CHARS = 4096
const MAX_SECRET_CHARS = 1024
const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/
const PRINTABLE_ASCII_NO_SPACE = /^[\u0021-\u007e]+$/

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message)
}

function integerText(text: string): unknown {
  return /^-?[0-9]+$/.test(text.trim()) ? Number(text.trim()) : text
}

function bounds(spec: SettingSpec<unknown>): { min: number, max: number } {
  if (spec.min === undefined || spec.max === undefined) throw new Error('schema bug: bounded-int needs min and max')
  return { min: spec.min, max: spec.max }
}

function choices(spec: SettingSpec<unknown>): readonly string[] {
  if (spec.values === undefined || spec.values.length === 0) throw new Error('schema bug: choice needs values')
  return spec.values
}

function isAdvertisable(text: string): boolean {
  const address = parseHostPort(text)
  return address !== undefined && !isUnspecifiedHost(address.host)
}

function isConsistencyLevel(value: unknown): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= MAX_NUMERIC_LEVEL
  if (typeof value !== 'string') return false
  try {
    parseConsistencyLevel(value, 'w')
    return true
  } catch {
    return false
  }
}

function seedsFromText(text: string): unknown {
  const trimmed = text.trim()
  if (trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown
    } catch {
      return text
    }
  }
  return trimmed.split(',').map(part => part.trim()).filter(part => part.length > 0)
}

export const formats: Readonly<Record<string, HearsayFormat>> = {
  'bounded-int': {
    validate(value, spec) {
      const { min, max } = bounds(spec)
      check(Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max,
        `must be an integer from ${min} to ${max}`)
    },
    coerce: integerText,
    describe(spec) {
      const { min, max } = bounds(spec)
      return `integer ${min} to ${max}`
    },
  },
  'port-number': {
    validate(value) {
      check(Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_PORT,
        `must be a port number (0-${MAX_PORT})`)
    },
    coerce: integerText,
    describe: () => `port 0–${MAX_PORT} (0: any free port)`,
  },
  flag: {
    validate(value) {
      check(typeof value === 'boolean', 'must be true or false')
    },
    coerce(text) {
      const lower = text.trim().toLowerCase()
      return lower === 'true' ? true : lower === 'false' ? false : text
    },
    describe: () => 'true or false',
  },
  'node-name': {
    validate(value) {
      check(typeof value === 'string' && value.length > 0 && value.length <= MAX_NODE_NAME_CHARS && !CONTROL_CHARS.test(value),
        `must be 1 to ${MAX_NODE_NAME_CHARS} characters without control characters`)
    },
    describe: () => `text, 1–${MAX_NODE_NAME_CHARS} characters`,
  },
  path: {
    validate(value) {
      check(typeof value === 'string' && value.length > 0 && value.length <= MAX_PATH_CHARS && !value.includes('\u0000'),
        'must be a non-empty file system path')
    },
    describe: () => 'path (relative: to the working directory)',
  },
  'cluster-name': {
    validate(value) {
      check(typeof value === 'string' && CLUSTER_NAME_PATTERN.test(value),
        'must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit')
    },
    describe: () => 'name: letters, digits, `.`, `-`, `_`; up to 64',
  },
  secret: {
    validate(value) {
      check(typeof value === 'string' && (value === '' || (value.length <= MAX_SECRET_CHARS && PRINTABLE_ASCII_NO_SPACE.test(value))),
        `must be empty or up to ${MAX_SECRET_CHARS} printable ASCII characters without spaces`)
    },
    describe: () => 'printable ASCII without spaces, or empty',
  },
  'file-path': {
    validate(value) {
      check(typeof value === 'string' && (value === '' || (value.length <= MAX_PATH_CHARS && !value.includes('\u0000'))),
        'must be empty or a file system path')
    },
    describe: () => 'path of a file (relative: to the config file that sets it), or empty',
  },
  choice: {
    validate(value, spec) {
      const values = choices(spec)
      check(typeof value === 'string' && values.includes(value), `must be one of ${values.join(', ')}`)
    },
    describe: spec => choices(spec).map(value => `\`${value}\``).join(', '),
  },
  'bind-host': {
    validate(value) {
      check(typeof value === 'string' && isBindHost(value), 'must be an IP address or a host name to bind (e.g. 127.0.0.1, 0.0.0.0, ::)')
    },
    describe: () => 'IP address or host name',
  },
  'advertise-address': {
    validate(value) {
      check(typeof value === 'string' && (value === '' || isAdvertisable(value)),
        'must be empty (derived) or host:port with a port from 1 to 65535 and a host others can dial (not 0.0.0.0 or ::; IPv6 in brackets)')
    },
    describe: () => '`host:port`, or empty to derive it from the bind address',
  },
  'address-list': {
    validate(value) {
      check(Array.isArray(value) && value.length <= MAX_SEEDS,
        `must be a list of up to ${MAX_SEEDS} host:port addresses (environment: comma-separated or a JSON array)`)
      const list = value as unknown[]
      const bad = list.findIndex(entry => typeof entry !== 'string' || !isAdvertisable(entry))
      check(bad === -1, `must be a list of host:port addresses; entry ${bad + 1} is not one (port 1-65535, IPv6 in brackets, not 0.0.0.0)`)
    },
    coerce: seedsFromText,
    describe: () => `list of up to ${MAX_SEEDS} \`host:port\` (env: comma-separated or JSON array)`,
  },
  'consistency-level': {
    validate(value) {
      check(isConsistencyLevel(value), `must be one, quorum, all or a number from 1 to ${MAX_NUMERIC_LEVEL}`)
    },
    coerce(text) {
      try {
        return parseConsistencyLevel(text.trim(), 'w')
      } catch {
        return text
      }
    },
    describe: () => `\`one\`, \`quorum\`, \`all\` or 1–${MAX_NUMERIC_LEVEL}`,
  },
  cron: {
    validate(value) {
      check(typeof value === 'string', 'must be a node-cron expression such as "*/30 * * * * *"')
      const text = value as string
      const reason = isCronExpression(text) ? undefined : explainCronExpression(text).errors[0]?.message ?? 'invalid'
      check(reason === undefined, `must be a node-cron expression such as "*/30 * * * * *" (${reason})`)
    },
    describe: () => 'node-cron expression, 5 or 6 fields (seconds first)',
  },
  duration: {
    validate(value) {
      check(parseDurationMs(value) !== undefined, `must be ${DURATION_SYNTAX}`)
    },
    coerce: integerText,
    describe: () => 'duration: `10d`, `36h`, `15m`, `30s`, `500ms` or ms',
  },
  'log-level': {
    validate(value) {
      check(typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value), `must be one of ${LOG_LEVELS.join(', ')}`)
    },
    describe: () => LOG_LEVELS.map(level => `\`${level}\``).join(', '),
  },
}

export function formatOf(spec: SettingSpec<unknown>): HearsayFormat {
  const format = formats[spec.format]
  if (format === undefined) throw new Error(`schema bug: unknown format ${spec.format}`)
  return format
}

convict.addFormats(Object.fromEntries(Object.entries(formats).map(([name, format]) => [name, {
  validate: (value: unknown, spec: convict.SchemaObj) => format.validate(value, spec as SettingSpec<unknown>),
  ...(format.coerce === undefined ? {} : { coerce: format.coerce }),
}])))
