import { BadRequestError } from '../errors.js'

/**
 * Keys are stored as their raw UTF-8 bytes (LMDB binary keys), so LMDB's byte order is exactly
 * the UTF-8 byte order that scans promise, and any well-formed string (spaces, '/', emoji, even
 * NUL) is a key. lmdb's default ordered-binary string keys would reserve NUL and add type tags.
 */

/** Longest key in UTF-8 bytes. LMDB's own limit is 1978 bytes with 4 KiB pages; this leaves room. */
export const MAX_KEY_BYTES = 1024

const utf8 = new TextDecoder('utf-8', { fatal: true })
const REPLACEMENT_CHARACTER_BYTES = Buffer.from('\uFFFD', 'utf8')

/** UTF-8 bytes of a string that must round-trip exactly (no lone surrogates). */
export function utf8Bytes(text: string, what: string): Buffer {
  const bytes = Buffer.from(text, 'utf8')
  // Lone surrogates are silently replaced by U+FFFD when encoding; refuse instead of aliasing keys.
  // As many bytes as code units: all ASCII, no replacement possible (and no search per write).
  if (bytes.length !== text.length && bytes.includes(REPLACEMENT_CHARACTER_BYTES) && bytes.toString('utf8') !== text) {
    throw new BadRequestError(`${what} is not well-formed Unicode (it contains a lone surrogate)`)
  }
  return bytes
}

/** The stored form of a key; throws BadRequestError for keys the store cannot hold. */
export function encodeKey(key: string): Buffer {
  if (key.length === 0) throw new BadRequestError('key must not be empty')
  const bytes = utf8Bytes(key, 'key')
  if (bytes.length > MAX_KEY_BYTES) {
    throw new BadRequestError(`key is ${bytes.length} bytes of UTF-8, more than the ${MAX_KEY_BYTES} allowed`, { maxKeyBytes: MAX_KEY_BYTES })
  }
  return bytes
}

export function decodeKey(bytes: Uint8Array): string {
  return utf8.decode(bytes)
}

/** The smallest key that sorts strictly after `bytes`: the same bytes plus a 0x00. */
export function keyAfter(bytes: Uint8Array): Buffer {
  const next = Buffer.alloc(bytes.length + 1)
  next.set(bytes)
  return next
}

/**
 * The exclusive upper bound of all keys starting with `prefix`: the prefix with its last byte
 * below 0xff incremented and the rest dropped; undefined when no such bound exists (all 0xff).
 */
export function prefixEnd(prefix: Uint8Array): Buffer | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i]
    if (byte !== undefined && byte < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1))
      end[i] = byte + 1
      return end
    }
  }
  return undefined
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

/** A scan's range bounds besides its prefix: `start` inclusive, `end` exclusive. */
export interface KeyBounds {
  readonly start?: string
  readonly end?: string
}

/**
 * Byte bounds of the keys starting with `prefix`, strictly after `after` and within `bounds`
 * (a scan's range): the greatest of the lower bounds and the least of the upper ones.
 */
export function keyRange(prefix: string, after: string | undefined, bounds: KeyBounds = {}): { start?: Buffer; end?: Buffer } {
  const prefixBytes = utf8Bytes(prefix, 'prefix')
  let start = prefixBytes.length > 0 ? prefixBytes : undefined
  const raise = (candidate: Buffer): void => { if (start === undefined || compareBytes(candidate, start) > 0) start = candidate }
  if (after !== undefined) raise(keyAfter(utf8Bytes(after, 'after')))
  if (bounds.start !== undefined && bounds.start !== '') raise(utf8Bytes(bounds.start, 'start'))
  let end = prefixBytes.length > 0 ? prefixEnd(prefixBytes) : undefined
  if (bounds.end !== undefined) {
    const endBytes = utf8Bytes(bounds.end, 'end')
    if (end === undefined || compareBytes(endBytes, end) < 0) end = endBytes
  }
  // An empty range: LMDB would read nothing anyway, but a start past the end must not wrap around.
  if (start !== undefined && end !== undefined && compareBytes(start, end) >= 0) return { start, end: start }
  return { ...(start === undefined ? {} : { start }), ...(end === undefined ? {} : { end }) }
}
