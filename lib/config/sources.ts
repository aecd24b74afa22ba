import fs from 'node:fs'
import path from 'node:path'
import { ConfigError } from './error.js'

/** Drop-in directory beside the main config file, as in /etc/hearsay/conf.d/*.json. */
export const DROP_IN_DIR = 'conf.d'
/** A config file bigger than this is not a config file; refuse it before parsing. */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024

const READ_FAILURES: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory, not a JSON file',
  ENOTDIR: 'a parent of this path is not a directory',
}

function describeFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code
  return (code !== undefined ? READ_FAILURES[code] : undefined) ?? `cannot read it (${(error as Error).message})`
}

/**
 * The `.json` files of the drop-in directory beside `mainFile`, in name order (byte order, not
 * locale, so `10-` sorts before `20-` everywhere). Dotfiles are skipped: editors leave them behind.
 * No directory means no drop-ins.
 */
export function dropInFiles(mainFile: string): string[] {
  const dir = path.join(path.dirname(mainFile), DROP_IN_DIR)
  let names: string[]
  try {
    names = fs.readdirSync(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new ConfigError(describeFailure(error), { source: dir })
  }
  return names
    .filter(name => name.endsWith('.json') && !name.startsWith('.'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map(name => path.join(dir, name))
    .filter(file => {
      try {
        return fs.statSync(file).isFile()
      } catch (error) {
        throw new ConfigError(describeFailure(error), { source: file })
      }
    })
}

/** Line and column of a JSON.parse error, so the message points into the file. */
function locate(text: string, message: string): string {
  const position = /at position (\d+)/.exec(message)?.[1]
  if (position === undefined) return ''
  const before = text.slice(0, Number(position))
  const line = before.split('\n').length
  const column = Number(position) - before.lastIndexOf('\n')
  return ` (line ${line}, column ${column})`
}

/** The JSON object a config file holds; an empty file counts as `{}`. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string
  try {
    const size = fs.statSync(file).size
    if (size > MAX_CONFIG_FILE_BYTES) throw new ConfigError(`is ${size} bytes; a config file may be at most ${MAX_CONFIG_FILE_BYTES}`, { source: file })
    // Editors on some systems save a byte-order mark, which JSON.parse refuses.
    text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '')
  } catch (error) {
    if (error instanceof ConfigError) throw error
    throw new ConfigError(describeFailure(error), { source: file })
  }
  if (text.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    const message = (error as Error).message
    throw new ConfigError(`not valid JSON: ${message}${locate(text, message)}`, { source: file })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError('must hold a JSON object of settings, e.g. {"api": {"port": 7070}}', { source: file })
  }
  return value as Record<string, unknown>
}
