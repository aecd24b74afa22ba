import type { OpOutcome, Operation, OperationKind } from '../../lib/bench/closed-loop.js'
import type { CompareTls } from './certificates.js'
import type { ServerBinaries } from './install.js'
import type { ProcessGroup, ServerProcess } from './processes.js'
import type { Workload } from './workload.js'

export type SystemName = 'hearsay' | 'etcd' | 'redis'
export const SYSTEM_NAMES: readonly SystemName[] = ['hearsay', 'etcd', 'redis']

/** Every system runs as three servers: 3 hearsay nodes, 3 etcd members, a Redis primary and 2 replicas. */
export const SERVERS_PER_SYSTEM = 3
/** How long a cluster may take to form before the harness gives up on it. */
export const CLUSTER_READY_TIMEOUT_MS = 60_000
/** Client-side deadline per operation: far above any healthy latency, so only a stall hits it. */
export const OPERATION_TIMEOUT_MS = 10_000

/** Every key the workload writes starts with this, so a watch of it sees every write. */
export const WATCH_PREFIX = 'k'

export interface StartContext {
  readonly group: ProcessGroup
  readonly binaries: ServerBinaries
  readonly workload: Workload
  /** Operations in flight; drivers size their connection pools from it. */
  readonly concurrency: number
  /**
   * Set: TLS on every link between the servers and on the client port, with these certificates;
   * clients verify the servers against the CA. Unset: plaintext.
   */
  readonly tls?: CompareTls
}

/**
 * Watches of the prefix every write key starts with (`--watchers`), and a write that names the
 * change its watch event will carry (hearsay: the version, etcd: the revision).
 */
export interface WatchDriver {
  /** Opens `count` watchers spread over the servers; resolves once every one of them receives changes. */
  open(count: number, onEvent: (id: string) => void): Promise<void>
  /** One write whose acknowledgement calls `onAck` with the id of the change. */
  write(worker: number, onAck: (id: string) => void): Promise<OpOutcome>
  /** Closes the watchers. */
  close(): Promise<void>
}

/** A started cluster with clients connected, ready for load. */
export interface RunningSystem {
  readonly servers: readonly ServerProcess[]
  readonly write: Operation
  readonly read: Operation
  /** Undefined for a system the harness does not watch (Redis). */
  readonly watch?: WatchDriver
  /** A compare-and-set on the worker's own key with the version it last saw (issue 13); absent when the system has none here. */
  readonly cas?: Operation
  /** Closes the clients; the servers belong to the ProcessGroup. */
  close(): Promise<void>
}

export interface SystemDriver {
  readonly name: SystemName
  /** What the write and read operations are, as shown in the table. */
  readonly writeOperation: string
  readonly readOperation: string
  /** What the watch phase's watchers are, as shown in the table; undefined when not watched. */
  readonly watchOperation?: string
  /** What the cas operation is; absent when the driver has no cas phase. */
  readonly casOperation?: string
  /** What an acknowledged write means for this system, printed under the table. */
  readonly ackPromise: string
  /** Names of the three servers, for their certificates. */
  readonly serverNames: readonly string[]
  /** What --tls turns on for this system, printed under the table. */
  readonly tlsSetup: string
  version(binaries: ServerBinaries): string
  start(context: StartContext): Promise<RunningSystem>
}

/** A short fixed label for an exception, so error counts group by kind. */
export function errorLabel(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  if (/time(d)? ?out|deadline/i.test(message)) return 'timeout'
  if (/ECONNREFUSED|ECONNRESET|EPIPE|socket|connection|closed|unavailable/i.test(message)) return 'connection'
  return 'exception'
}

/**
 * Runs one operation and turns its result into an outcome: `run` resolves to undefined on
 * success or to an error label (e.g. 'not_found'); a throw is labelled by `label`.
 */
export async function attempt(kind: OperationKind, run: () => Promise<string | undefined>, label: (error: unknown) => string = errorLabel): Promise<OpOutcome> {
  try {
    const failure = await run()
    return failure === undefined ? { kind, ok: true } : { kind, ok: false, error: failure }
  } catch (error) {
    return { kind, ok: false, error: label(error) }
  }
}
