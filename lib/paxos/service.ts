import type { Version } from '../clock/version.js'
import { UnavailableError } from '../errors.js'
import type { ReadResult } from '../replication/service.js'
import { compareAndSet, increment, read } from './changes.js'
import type { Proposer } from './proposer.js'

/**
 * What the client API asks for linearizable operations (docs/consistency.md "Linearizable
 * operations"). Every answer is definite except OutcomeUnknownError (503 `outcome: "unknown"`).
 */
export interface LinearizableService {
  /** Writes `value` (null deletes) if the key is at `ifVersion` ('absent': does not exist); ConditionFailedError (409) otherwise. */
  compareAndSet(key: string, value: Uint8Array | null, ifVersion: Version | 'absent'): Promise<{ key: string; version: Version }>
  /** Adds `by` to the key's decimal integer value (absent = 0); ConditionFailedError when it is not one. */
  increment(key: string, by: bigint): Promise<{ key: string; value: string; version: Version }>
  /** The key's value as of a moment within the call; undefined when absent. */
  read(key: string): Promise<ReadResult | undefined>
}

export function proposerService(proposer: Proposer): LinearizableService {
  return {
    compareAndSet: (key, value, ifVersion) => proposer.run(key, compareAndSet(key, value, ifVersion)),
    increment: (key, by) => proposer.run(key, increment(key, by)),
    read: (key) => proposer.run(key, read(key), true),
  }
}

/**
 * The linearizable operations behind the node's refusals, as guardKvService does for the plain
 * ones: `refusal` (repairing after a long absence) for all, `writeRefusal` (this node's clock is
 * skewed) for changes, before any ballot or version is taken.
 */
export function guardLinearizable(service: LinearizableService, refusal: () => string | undefined, writeRefusal: () => Error | undefined): LinearizableService {
  const check = (write: boolean): void => {
    const reason = refusal()
    if (reason !== undefined) throw new UnavailableError(reason)
    const error = write ? writeRefusal() : undefined
    if (error !== undefined) throw error
  }
  return {
    compareAndSet: async (key, value, ifVersion) => { check(true); return service.compareAndSet(key, value, ifVersion) },
    increment: async (key, by) => { check(true); return service.increment(key, by) },
    read: async (key) => { check(false); return service.read(key) },
  }
}
