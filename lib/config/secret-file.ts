import fs from 'node:fs'
import path from 'node:path'
import { ConfigError } from './error.js'
import { formatOf } from './formats.js'
import { settings } from './schema.js'

/** A secret is at most 1024 characters; a file much bigger than that is the wrong file. */
const MAX_SECRET_FILE_BYTES = 64 * 1024
/** Group or other may read, write or run it: someone besides the owner can learn the secret. */
const GROUP_OR_OTHER_BITS = 0o077
const GROUP_READ_BIT = 0o040

const mode = (stat: fs.Stats): string => `0${(stat.mode & 0o777).toString(8)}`

/**
 * systemd's LoadCredential= writes each credential 0400 root:root and grants the service's user
 * read access by an ACL; `stat` then shows the ACL mask in the group bits, 0440. Inside
 * $CREDENTIALS_DIRECTORY (a private mount only that user and root can enter) that is as private
 * as 0400, so we accept it there and nowhere else.
 */
function isSystemdCredential(file: string, stat: fs.Stats, env: NodeJS.ProcessEnv): boolean {
  const dir = env.CREDENTIALS_DIRECTORY
  if (dir === undefined || dir === '') return false
  if ((stat.mode & GROUP_OR_OTHER_BITS) !== GROUP_READ_BIT || stat.uid !== 0 || stat.gid !== 0) return false
  try {
    return path.dirname(fs.realpathSync(file)) === fs.realpathSync(dir)
  } catch {
    return false
  }
}

/**
 * The secret a `…File` setting points at (cluster.secretFile, api.tokenFile), with surrounding
 * white space trimmed (editors and `echo` add a newline). Refuses a file others could read, so the
 * secret is no easier to learn than before it moved out of the config file.
 */
export function readSecretFile(key: string, valueKey: string, file: string, source: string, env: NodeJS.ProcessEnv): string {
  const where = { key, source }
  let stat: fs.Stats
  let text: string
  try {
    stat = fs.statSync(file)
    if (!stat.isFile()) throw new ConfigError(`${file} is not a regular file; point ${key} at the file holding the secret`, where)
    if (stat.size > MAX_SECRET_FILE_BYTES) throw new ConfigError(`${file} is ${stat.size} bytes, too big for a secret (at most ${MAX_SECRET_FILE_BYTES}); check the path`, where)
    if ((stat.mode & GROUP_OR_OTHER_BITS) !== 0 && !isSystemdCredential(file, stat, env)) {
      throw new ConfigError(`${file} has mode ${mode(stat)}, so users other than its owner can read the secret; run chmod 600 ${file}`, where)
    }
    text = fs.readFileSync(file, 'utf8').trim()
  } catch (error) {
    if (error instanceof ConfigError) throw error
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : (code ?? (error as Error).message)
    throw new ConfigError(`cannot read ${file}: ${why}; check the path and that the daemon's user may read it`, where)
  }
  if (text === '') throw new ConfigError(`${file} is empty; put the secret in it or unset ${key}`, where)
  const spec = settings.get(valueKey)
  if (spec === undefined) throw new Error(`schema bug: no setting ${valueKey}`)
  try {
    formatOf(spec).validate(text, spec)
  } catch (error) {
    // Never echo the file's contents: it is a secret even when malformed.
    throw new ConfigError(`${file} does not hold a valid ${valueKey}: it ${(error as Error).message}`, where)
  }
  return text
}
