/** Bench keys start with this (trimmed when the key is too short to hold it and the number). */
export const KEY_PREFIX = 'bench/'
/**
 * Keys of `--mix incr` start with this instead, so counters never land on a key a put or CAS run
 * filled with bytes that are not a decimal integer (an increment of those is a 409).
 */
export const COUNTER_KEY_PREFIX = 'count/'

/** Bytes needed to number `keys` keys without the prefix. */
export function minimumKeyBytes(keys: number): number {
  return String(Math.max(0, keys - 1)).length
}

/**
 * Key `index` of the key space, exactly `keyBytes` ASCII bytes: the prefix (as much as fits)
 * then the zero-padded index. Deterministic, so a get-only run finds what a put run wrote.
 */
export function benchKey(index: number, keyBytes: number, keys: number, keyPrefix = KEY_PREFIX): string {
  const digits = minimumKeyBytes(keys)
  if (keyBytes < digits) throw new RangeError(`keyBytes ${keyBytes} cannot number ${keys} keys (needs ${digits})`)
  if (!Number.isSafeInteger(index) || index < 0 || index >= keys) throw new RangeError(`key index ${index} is outside 0…${keys - 1}`)
  const prefix = keyPrefix.slice(0, keyBytes - digits)
  return prefix + String(index).padStart(keyBytes - prefix.length, '0')
}
