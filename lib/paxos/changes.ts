import { formatVersion, compareVersions, type Version } from '../clock/version.js'
import { ConditionFailedError } from '../errors.js'
import type { StoredRecord } from '../store/record.js'

/**
 * The change functions a proposer applies to a key's register (CASPaxos's f: current state →
 * next state). Each sees the register's current record (undefined when the key never existed)
 * and says what to write — or throws ConditionFailedError when its condition does not hold.
 */
export interface ChangeOutcome<R> {
  /** The next value (null: absent), or 'unchanged' to keep the current record as it is. */
  readonly next: Uint8Array | null | 'unchanged'
  /** What the caller is answered, given the version the change ends up with. */
  readonly result: (version: Version | undefined, value: Uint8Array | null) => R
}

export type Change<R> = (current: StoredRecord | undefined) => ChangeOutcome<R>

/** Digits an incr value may have (sign excluded): far beyond any count, small enough to bound the work. */
export const MAX_COUNTER_DIGITS = 64
const COUNTER_PATTERN = /^-?[0-9]+$/

/** The value of a record as the API sees it: null for an absent key (never written, or deleted). */
export function liveValue(record: StoredRecord | undefined): Uint8Array | null {
  return record === undefined ? null : record.value
}

function currentVersion(record: StoredRecord | undefined): string | null {
  return record === undefined || record.value === null ? null : formatVersion(record.version)
}

/**
 * Compare-and-set: write `value` (null deletes) if the key's version is `ifVersion`, or if the
 * key is absent for 'absent'.
 */
export function compareAndSet(key: string, value: Uint8Array | null, ifVersion: Version | 'absent'): Change<{ key: string; version: Version }> {
  return (current) => {
    const present = current !== undefined && current.value !== null
    const holds = ifVersion === 'absent' ? !present : present && compareVersions(current.version, ifVersion) === 0
    if (!holds) {
      const wanted = ifVersion === 'absent' ? 'absent' : `at version ${formatVersion(ifVersion)}`
      const now = present ? `is at version ${formatVersion(current.version)}` : 'does not exist'
      throw new ConditionFailedError(`key ${JSON.stringify(key)} is not ${wanted}: it ${now}; read it again and retry with its current version`, { version: currentVersion(current) })
    }
    return { next: value, result: (version) => ({ key, version: version as Version }) }
  }
}

/** Adds `by` to the key's decimal integer value (absent counts as 0). */
export function increment(key: string, by: bigint): Change<{ key: string; value: string; version: Version }> {
  return (current) => {
    const text = current?.value == null ? '0' : Buffer.from(current.value).toString('utf8')
    const digits = text.startsWith('-') ? text.length - 1 : text.length
    if (!COUNTER_PATTERN.test(text) || digits > MAX_COUNTER_DIGITS) {
      throw new ConditionFailedError(`key ${JSON.stringify(key)} does not hold a decimal integer of at most ${MAX_COUNTER_DIGITS} digits, so it cannot be incremented`, { version: currentVersion(current) })
    }
    const next = (BigInt(text) + by).toString()
    if (next.replace('-', '').length > MAX_COUNTER_DIGITS) {
      throw new ConditionFailedError(`incrementing key ${JSON.stringify(key)} would pass ${MAX_COUNTER_DIGITS} digits`, { version: currentVersion(current) })
    }
    return { next: Buffer.from(next, 'utf8'), result: (version) => ({ key, value: next, version: version as Version }) }
  }
}

/** A linearizable read: the register as it is (undefined when absent). */
export function read(key: string): Change<{ key: string; value: Uint8Array; version: Version } | undefined> {
  return () => ({
    next: 'unchanged',
    result: (version, value) => version === undefined || value === null ? undefined : { key, value, version },
  })
}
