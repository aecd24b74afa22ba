import { HearsayClientError } from '../client/errors.js'
import type { Operation, OpOutcome } from './closed-loop.js'
import { errorLabel } from './error-label.js'
import { benchKey, COUNTER_KEY_PREFIX } from './keys.js'

/**
 * The compare-and-set and counter loads of `hearsay bench --mix cas|incr` (issue 13).
 *
 * Worker w works on key (w mod keys) through node (w mod nodes): with --keys at least
 * --concurrency every worker has its own key and node, so each CAS is the uncontended cost of a
 * conditional write (and the same proposer keeps a key, which CASPaxos's one-round-trip path
 * rewards); fewer keys than workers make them contend, which shows as 409s (CAS) or as longer
 * latency (incr, retried inside the node).
 */

/** What the load needs of a client; HearsayClient has it. */
export interface LinearizableClient {
  /** Resolves on 200 with the new version; throws HearsayClientError on 409 (body.current) and 503. `ifVersion` 'absent': the key must not exist. */
  cas(key: string, value: Uint8Array, options: { readonly ifVersion: string }): Promise<{ readonly version: string }>
  incr(key: string, options: { readonly by?: number }): Promise<{ readonly value: string; readonly version: string }>
}

export type LinearizableMix = 'cas' | 'incr'

/** `ifVersion` of a key that must not exist yet. */
const ABSENT = 'absent'

export interface LinearizableWorkloadOptions {
  readonly clients: readonly LinearizableClient[]
  readonly mix: LinearizableMix
  readonly keyBytes: number
  readonly keys: number
  readonly value: Uint8Array
}

export interface LinearizableWorkload {
  readonly operation: Operation
  /** 409 answers (CAS: the version moved on, the worker retries with the current one). */
  conflicts(): number
}

export function createLinearizableWorkload(options: LinearizableWorkloadOptions): LinearizableWorkload {
  const { clients, mix, keyBytes, keys, value } = options
  if (clients.length === 0) throw new RangeError('a workload needs at least one client')
  /** The version each key had at the last answer about it ('absent', or never asked: absent). */
  const versions = new Map<string, string>()
  let conflicts = 0

  const cas = async (client: LinearizableClient, key: string): Promise<OpOutcome> => {
    try {
      const reply = await client.cas(key, value, { ifVersion: versions.get(key) ?? ABSENT })
      versions.set(key, reply.version)
      return { kind: 'cas', ok: true }
    } catch (err) {
      const current = conflictVersion(err)
      if (current !== undefined) {
        conflicts++
        versions.set(key, current)
      } else if (err instanceof HearsayClientError && err.status === 503) {
        // Outcome unknown: the version may have moved; the next 409 will say where to.
        versions.delete(key)
      }
      return { kind: 'cas', ok: false, error: linearizableErrorLabel(err) }
    }
  }

  const incr = async (client: LinearizableClient, key: string): Promise<OpOutcome> => {
    try {
      await client.incr(key, { by: 1 })
      return { kind: 'incr', ok: true }
    } catch (err) {
      if (conflictVersion(err) !== undefined) conflicts++
      return { kind: 'incr', ok: false, error: linearizableErrorLabel(err) }
    }
  }

  const operation: Operation = async (worker) => {
    const client = clients[worker % clients.length] as LinearizableClient
    return mix === 'cas'
      ? cas(client, benchKey(worker % keys, keyBytes, keys))
      : incr(client, benchKey(worker % keys, keyBytes, keys, COUNTER_KEY_PREFIX))
  }
  return { operation, conflicts: () => conflicts }
}

/** The current version a 409 names ('absent' when the key does not exist), or undefined for anything else. */
function conflictVersion(err: unknown): string | undefined {
  if (!(err instanceof HearsayClientError) || err.status !== 409) return undefined
  const current = err.body.current
  if (typeof current !== 'object' || current === null) return ABSENT
  const version = (current as { version?: unknown }).version
  return typeof version === 'string' ? version : ABSENT
}

/**
 * A 503 "outcome unknown" (a majority did not answer in time; the change may still have been
 * applied) is labelled apart from other 503s: it is the answer issue 13 says never to report as a
 * plain failure.
 */
export function linearizableErrorLabel(err: unknown): string {
  if (err instanceof HearsayClientError && err.status === 503 && err.body.outcome === 'unknown') return 'unknown_503'
  return errorLabel(err)
}
