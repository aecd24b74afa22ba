import { randomBytes } from 'node:crypto'
import { HearsayClient, type ClientTlsOptions } from '../client/client.js'
import type { ConsistencyLevel } from '../replication/consistency.js'
import type { BenchSettings, PutGetMix } from './args.js'
import { runClosedLoop, type LoadProgress, type LoadResult, type Operation } from './closed-loop.js'
import { createLinearizableWorkload } from './linearizable-workload.js'
import { runOpenLoop, type OpenLoopSchedule } from './open-loop.js'
import { StalenessProbe, type StalenessCounts } from './staleness.js'
import { KEY_PREFIX, minimumKeyBytes } from './keys.js'
import { WatchLatencyProbe, type WatchStats } from './watch-latency.js'
import { createWorkload, type AckedWrite } from './workload.js'

/** Keep-alive sockets of each staleness reader: its reads come in bursts of one per sampled write. */
const STALENESS_READER_SOCKETS = 16

/** Where the load goes: the node URLs and what every client needs to talk to them. */
export interface BenchTarget {
  readonly nodes: readonly string[]
  readonly token?: string
  readonly timeoutMs?: number
  /** CA (and client certificate) for https:// nodes. */
  readonly tls?: ClientTlsOptions
}

/** `label` names the run in a sweep (e.g. `w=2`); empty for a single run. */
export type ProgressListener = (label: string, progress: LoadProgress) => void

/** A run's result; `schedule` is there for an open-loop (--rate) run. */
export type BenchResult = LoadResult & { readonly schedule?: OpenLoopSchedule }

export interface BenchReport {
  readonly settings: BenchSettings
  readonly nodes: readonly string[]
  readonly result: BenchResult
  /** Gets answered 404 (key not written yet): counted as successes, reported apart. */
  readonly getMisses: number
  /** With --watchers: what the watchers saw of the puts. */
  readonly watch?: WatchStats
}

export interface SweepRun {
  readonly w: ConsistencyLevel
  readonly result: BenchResult
  readonly getMisses: number
  readonly staleness: StalenessCounts
}

export interface SweepReport {
  readonly settings: BenchSettings
  readonly nodes: readonly string[]
  readonly runs: readonly SweepRun[]
}

/** One closed-loop run of the settings' load, spread over every node. */
export async function runBench(settings: BenchSettings, target: BenchTarget, onProgress?: ProgressListener): Promise<BenchReport> {
  return withClients(target, settings.concurrency, async clients => {
    const { mix } = settings
    const probe = settings.watchers === 0 ? undefined : new WatchLatencyProbe({ ...target, watchers: settings.watchers, prefix: writtenPrefix(settings) })
    try {
      await probe?.open()
      const workload = typeof mix === 'string'
        ? { ...createLinearizableWorkload({ clients, mix, keyBytes: settings.keyBytes, keys: settings.keys, value: randomBytes(settings.valueBytes) }), getMisses: () => 0 }
        : createWorkload({ ...workloadShape(settings, mix), clients, w: settings.w, ...(probe === undefined ? {} : { onAckedWrite: (write: AckedWrite) => probe.onAckedWrite(write) }) })
      probe?.measureFrom(performance.now() + settings.warmupMs)
      const result = await runLoad(settings, workload.operation, onProgress === undefined ? undefined : progress => onProgress('', progress))
      const watch = await probe?.finish(result.elapsedMs)
      return { settings, nodes: target.nodes, result, getMisses: workload.getMisses(), ...(watch === undefined ? {} : { watch }) }
    } finally {
      probe?.close()
    }
  })
}

/** The prefix every bench key starts with (the part of KEY_PREFIX the key length leaves room for). */
export function writtenPrefix(settings: Pick<BenchSettings, 'keyBytes' | 'keys'>): string {
  return KEY_PREFIX.slice(0, Math.max(0, settings.keyBytes - minimumKeyBytes(settings.keys)))
}

/**
 * The same load once per write level, in the order given, each with a staleness probe that reads
 * sampled keys back from every node.
 */
export async function runSweep(settings: BenchSettings, target: BenchTarget, onProgress?: ProgressListener): Promise<SweepReport> {
  const sweep = settings.sweep
  if (sweep === undefined) throw new RangeError('runSweep needs settings with a sweep')
  return withClients(target, settings.concurrency, async clients => {
    const readers = target.nodes.map(node => openClient(target, [node], STALENESS_READER_SOCKETS))
    try {
      const runs: SweepRun[] = []
      if (typeof settings.mix === 'string') throw new RangeError('a sweep needs a put:get mix')
      const shape = workloadShape(settings, settings.mix)
      for (const w of sweep.levels) {
        const probe = new StalenessProbe({ readers, sampleEvery: sweep.sampleEvery, settleMs: sweep.settleMs })
        const workload = createWorkload({ ...shape, clients, w, onAckedWrite: (write: AckedWrite) => probe.onAckedWrite(write) })
        const result = await runLoad(settings, workload.operation, onProgress === undefined ? undefined : progress => onProgress(`w=${w}`, progress))
        runs.push({ w, result, getMisses: workload.getMisses(), staleness: await probe.finish() })
      }
      return { settings, nodes: target.nodes, runs }
    } finally {
      for (const reader of readers) reader.close()
    }
  })
}

/** The open loop with --rate, else the closed loop. */
function runLoad(settings: BenchSettings, operation: Operation, onProgress: ((progress: LoadProgress) => void) | undefined): Promise<BenchResult> {
  if (settings.ratePerSecond !== undefined) {
    return runOpenLoop({ ...loadLength(settings), ratePerSecond: settings.ratePerSecond, maxInFlight: settings.concurrency, operation, onProgress })
  }
  return runClosedLoop({ ...loadLength(settings), concurrency: settings.concurrency, operation, onProgress })
}

/** One client per node (not one client with a node list, which would send everything to the first). */
async function withClients<T>(target: BenchTarget, concurrency: number, body: (clients: HearsayClient[]) => Promise<T>): Promise<T> {
  const clients = target.nodes.map(node => openClient(target, [node], concurrency))
  try {
    // Fail before the load with the node named, rather than with a table of connection errors.
    await Promise.all(clients.map(client => client.health()))
    return await body(clients)
  } finally {
    for (const client of clients) client.close()
  }
}

function openClient(target: BenchTarget, nodes: readonly string[], maxSockets: number): HearsayClient {
  return new HearsayClient({ nodes, token: target.token, timeoutMs: target.timeoutMs, maxSockets, tls: target.tls })
}

function workloadShape(settings: BenchSettings, mix: PutGetMix): { keyBytes: number; keys: number; mix: PutGetMix; value: Uint8Array; r: ConsistencyLevel | undefined } {
  return { keyBytes: settings.keyBytes, keys: settings.keys, mix, value: randomBytes(settings.valueBytes), r: settings.r }
}

function loadLength(settings: BenchSettings): { durationMs?: number; ops?: number; warmupMs: number } {
  return settings.ops === undefined ? { durationMs: settings.durationMs, warmupMs: settings.warmupMs } : { ops: settings.ops, warmupMs: settings.warmupMs }
}
