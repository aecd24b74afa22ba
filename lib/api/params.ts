import { parseVersion, type Version } from '../clock/version.js'
import { BadRequestError, UriTooLongError } from '../errors.js'
import { MAX_TTL_SECONDS } from './limits.js'

/**
 * Parsing and validation of what arrives in the URL: keys from the path and query parameters.
 * Everything here throws typed errors with one sentence naming the parameter at fault.
 */

/**
 * Query parameters, each at most once and only from `allowed`: a typo such as `?tll=60` must
 * fail loudly rather than silently write a value that never expires.
 */
export function parseQuery(rawQuery: string, allowed: readonly string[]): Map<string, string> {
  const params = new Map<string, string>()
  for (const [name, value] of new URLSearchParams(rawQuery)) {
    if (!allowed.includes(name)) {
      const accepted = allowed.length === 0 ? 'none' : allowed.join(', ')
      throw new BadRequestError(`unknown query parameter ${JSON.stringify(name)}; this endpoint accepts: ${accepted}`, { param: name })
    }
    if (params.has(name)) throw new BadRequestError(`query parameter ${JSON.stringify(name)} is given more than once`, { param: name })
    params.set(name, value)
  }
  return params
}

/** `ttl` in whole seconds, 1 … MAX_TTL_SECONDS. */
export function parseTtlSeconds(text: string): number {
  if (/^[1-9][0-9]{0,9}$/.test(text)) {
    const seconds = Number(text)
    if (seconds <= MAX_TTL_SECONDS) return seconds
  }
  throw new BadRequestError(`ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, got ${JSON.stringify(text)}`, { param: 'ttl' })
}

/** Scan page size: absent = the default, otherwise 1 … maxScanLimit. */
export function parseScanLimit(text: string | undefined, defaultLimit: number, maxLimit: number): number {
  if (text === undefined) return defaultLimit
  if (/^[1-9][0-9]{0,9}$/.test(text)) {
    const limit = Number(text)
    if (limit <= maxLimit) return limit
  }
  throw new BadRequestError(`limit must be a whole number from 1 to ${maxLimit}, got ${JSON.stringify(text)}`, { param: 'limit', maxScanLimit: maxLimit })
}

/**
 * The key from everything after `/kv/` in the request path: percent-decoded UTF-8, so `a/b`,
 * `a%2Fb` and `%F0%9F%94%91` are all keys. (Raw non-ASCII bytes never get here: Node's parser
 * refuses them, see client-error.ts.)
 */
export function decodePathKey(rawKey: string, maxKeyBytes: number): string {
  let key: string
  try {
    key = decodeURIComponent(rawKey)
  } catch {
    throw new BadRequestError('key is not valid percent-encoded UTF-8; encode it with encodeURIComponent or equivalent')
  }
  checkKey(key, maxKeyBytes, 'uri', 'key')
  return key
}

/**
 * Keys are non-empty and at most maxKeyBytes of UTF-8. Too long answers 414 when the key came in
 * the URL and 400 when it came in a body, where "URI too long" would mislead.
 */
export function checkKey(key: string, maxKeyBytes: number, source: 'uri' | 'body', what: string, details: Record<string, unknown> = {}): void {
  if (key.length === 0) throw new BadRequestError(`${what} must not be empty`, details)
  checkKeyBytes(key, maxKeyBytes, source, what, details)
}

/** Length rule alone, for prefixes and cursors, which may be empty. */
export function checkKeyBytes(text: string, maxKeyBytes: number, source: 'uri' | 'body', what: string, details: Record<string, unknown> = {}): void {
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes <= maxKeyBytes) return
  const message = `${what} is ${bytes} bytes of UTF-8, more than the limit of ${maxKeyBytes}`
  throw source === 'uri' ? new UriTooLongError(message, { ...details, maxKeyBytes }) : new BadRequestError(message, { ...details, maxKeyBytes })
}

/** `ifVersion`: a version string as the API prints them, or `absent`. */
export function parseIfVersion(text: string): Version | 'absent' {
  if (text === 'absent') return 'absent'
  try {
    return parseVersion(text)
  } catch {
    throw new BadRequestError(`ifVersion must be a version as hearsay prints them (e.g. 1795601425041000-523dcc4973469070) or "absent", got ${JSON.stringify(text)}`, { param: 'ifVersion' })
  }
}

/** Largest |by| of an incr: a safe integer, so every client language can send it exactly. */
const MAX_INCREMENT = Number.MAX_SAFE_INTEGER

/** `by` of an incr: a (possibly negative) safe integer; absent = 1. */
export function parseIncrement(text: string | undefined): bigint {
  if (text === undefined) return 1n
  if (/^-?[0-9]{1,16}$/.test(text)) {
    const by = Number(text)
    if (Math.abs(by) <= MAX_INCREMENT) return BigInt(text)
  }
  throw new BadRequestError(`by must be an integer from -${MAX_INCREMENT} to ${MAX_INCREMENT}, got ${JSON.stringify(text)}`, { param: 'by' })
}
