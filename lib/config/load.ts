import convict from 'convict'
import path from 'node:path'
import { parseDurationMs } from './duration.js'
import { ConfigError } from './error.js'
import { formatOf } from './formats.js'
import { checkRelations, type Origin } from './relations.js'
import { readSecretFile } from './secret-file.js'
import { schema, sections, settings } from './schema.js'
import { dropInFiles, readConfigFile } from './sources.js'
import type { HearsayConfig, HearsaySettings, SettingSpec } from './types.js'

export interface LoadOptions {
  /** Config files applied in order, later ones overriding earlier ones; conf.d/ is found beside the first. */
  readonly files: readonly string[]
  /** Environment whose HEARSAY_* variables override every file. */
  readonly env: NodeJS.ProcessEnv
}

export interface LoadedConfig {
  readonly config: HearsayConfig
  /** Every file applied, in the order applied (the given files, then conf.d drop-ins). */
  readonly files: readonly string[]
  /** HEARSAY_* environment variables that name no setting (likely typos); the daemon should warn. */
  readonly unknownEnv: readonly string[]
}

const ENV_PREFIX = 'HEARSAY_'
/** Keep error lines readable when someone pastes a novel into a setting. */
const MAX_SHOWN_VALUE_CHARS = 80
const MAX_SUGGESTION_DISTANCE = 2

function show(value: unknown, spec: SettingSpec<unknown>): string {
  if (spec.sensitive === true) return 'a value not shown (sensitive)'
  const text = JSON.stringify(value) ?? String(value)
  return text.length > MAX_SHOWN_VALUE_CHARS ? `${text.slice(0, MAX_SHOWN_VALUE_CHARS)}…` : text
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

function unknownKeyProblem(key: string): string {
  if (sections.has(key)) return `is a group of settings and must be a JSON object, e.g. {"${key.split('.').pop() ?? key}": {…}}`
  const known = [...settings.keys(), ...sections]
  const nearest = known.find(candidate => editDistance(key.toLowerCase(), candidate.toLowerCase()) <= MAX_SUGGESTION_DISTANCE)
  return `is not a known setting${nearest === undefined ? '' : ` (did you mean ${nearest}?)`}; see docs/configuration.md`
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The settings a file sets, as [dotted key, value]; nesting stops at a known setting. */
function* entriesOf(values: Record<string, unknown>, prefix = ''): Generator<[string, unknown]> {
  for (const [name, value] of Object.entries(values)) {
    const key = prefix === '' ? name : `${prefix}.${name}`
    if (!settings.has(key) && isPlainObject(value)) yield* entriesOf(value, key)
    else yield [key, value]
  }
}

/**
 * File settings (format `file-path`) as absolute paths: relative ones resolve against the
 * directory of the config file that set them (so a config and its certificates move together),
 * or against the working directory when set by the environment.
 */
function resolveFilePaths(values: Record<string, unknown>, baseDir: string, prefix = ''): void {
  for (const [name, value] of Object.entries(values)) {
    const key = prefix === '' ? name : `${prefix}.${name}`
    const spec = settings.get(key)
    if (spec === undefined && isPlainObject(value)) resolveFilePaths(value, baseDir, key)
    else if (spec?.format === 'file-path' && typeof value === 'string' && value !== '') values[name] = path.resolve(baseDir, value)
  }
}

/** Secret files read into the settings downstream code reads (cluster.secret, api.token). */
function readSecretFiles(values: HearsaySettings, origins: ReadonlyMap<string, Origin>, env: NodeJS.ProcessEnv): HearsaySettings {
  const read = (fileKey: string, valueKey: string, file: string): string =>
    readSecretFile(fileKey, valueKey, file, origins.get(fileKey)?.source ?? 'defaults', env)
  const secret = values.cluster.secretFile === '' ? values.cluster.secret : read('cluster.secretFile', 'cluster.secret', values.cluster.secretFile)
  const token = values.api.tokenFile === '' ? values.api.token : read('api.tokenFile', 'api.token', values.api.tokenFile)
  return { ...values, cluster: { ...values.cluster, secret }, api: { ...values.api, token } }
}

function checkValue(key: string, value: unknown, source: string): void {
  const spec = settings.get(key)
  if (spec === undefined) throw new ConfigError(unknownKeyProblem(key), { key, source })
  try {
    formatOf(spec).validate(value, spec)
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}, got ${show(value, spec)}`, { key, source })
  }
}

function envValue(spec: SettingSpec<unknown>, text: string): unknown {
  return formatOf(spec).coerce?.(text) ?? text
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

/**
 * Defaults, then each file in order, then conf.d drop-ins in name order, then HEARSAY_* variables.
 * Each source is checked on its own before convict merges it, so an error names the file or
 * variable that set the bad value; convict's strict validation of the merged result backs that up.
 */
export function loadConfig(options: LoadOptions): LoadedConfig {
  const mainFile = options.files[0]
  const files = [...options.files, ...(mainFile === undefined ? [] : dropInFiles(mainFile))]
  const origins = new Map<string, Origin>()
  // Explicit args and env: convict reads process.argv and process.env otherwise.
  const merged = convict<HearsaySettings>(schema as unknown as convict.Schema<HearsaySettings>, { args: [], env: options.env })

  files.forEach((file, rank) => {
    const values = readConfigFile(file)
    for (const [key, value] of entriesOf(values)) {
      checkValue(key, value, file)
      origins.set(key, { source: file, rank })
    }
    resolveFilePaths(values, path.dirname(path.resolve(file)))
    merged.load(values)
  })

  for (const [key, spec] of settings) {
    const text = options.env[spec.env]
    if (text === undefined) continue
    const source = `env ${spec.env}`
    checkValue(key, envValue(spec, text), source)
    origins.set(key, { source, rank: files.length })
    if (spec.format === 'file-path' && text !== '') merged.set(key, path.resolve(text))
  }
  const knownEnv = new Set([...settings.values()].map(spec => spec.env))
  const unknownEnv = Object.keys(options.env).filter(name => name.startsWith(ENV_PREFIX) && !knownEnv.has(name)).sort()

  try {
    merged.validate({ allowed: 'strict' })
  } catch (error) {
    // Unreachable unless the per-source checks above and convict disagree: still one line.
    throw new ConfigError((error as Error).message.split('\n')[0] ?? 'invalid', {})
  }
  checkRelations(merged.getProperties(), origins)
  const values = readSecretFiles(merged.getProperties(), origins, options.env)

  const tombstoneGraceMs = parseDurationMs(values.store.tombstoneGrace)
  if (tombstoneGraceMs === undefined) throw new ConfigError('store.tombstoneGrace did not parse after validation', {})
  const retentionMs = parseDurationMs(values.watch.retention)
  if (retentionMs === undefined) throw new ConfigError('watch.retention did not parse after validation', {})
  const config: HearsayConfig = { ...values, store: { ...values.store, tombstoneGraceMs }, watch: { ...values.watch, retentionMs } }
  return deepFreeze({ config, files, unknownEnv })
}
