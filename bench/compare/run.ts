import { runClosedLoop, type KindStats, type LoadProgress, type Operation } from '../../lib/bench/closed-loop.js'
import type { CompareTls } from './certificates.js'
import { drain, FanoutLatency, type FanoutStats } from '../../lib/bench/fanout-latency.js'
import type { ServerBinaries } from './install.js'
import { sampleProcess, type ProcessSample } from './proc-stats.js'
import type { ProcessGroup, ServerProcess } from './processes.js'
import type { SystemDriver, SystemName } from './system.js'
import { Workload } from './workload.js'

export type PhaseName = 'write' | 'read' | 'watch' | 'cas'
/** After the watch phase's writes, how long deliveries still owed may take before they count as missed. */
const WATCH_DRAIN_TIMEOUT_MS = 10_000
const MICROSECONDS_PER_SECOND = 1_000_000

/** One server's resource use over one phase. */
export interface ServerUsage {
  readonly name: string
  readonly pid: number
  /** CPU seconds the server used during the phase. */
  readonly cpuSeconds: number
  /** Resident memory at the end of the phase. */
  readonly rssBytes: number
  /** Largest resident memory since the server started. */
  readonly peakRssBytes: number
}

export interface PhaseReport {
  readonly phase: PhaseName
  readonly operation: string
  readonly elapsedMs: number
  readonly load: KindStats
  readonly servers: readonly ServerUsage[]
  /** CPU seconds of the load generator (this process) during the phase: the clients cost too. */
  readonly clientCpuSeconds: number
}

export interface SystemReport {
  readonly system: SystemName
  /** This run had TLS on the servers' links and client port. */
  readonly tls: boolean
  readonly version: string
  readonly ackPromise: string
  /** What TLS covers in this system's TLS run. */
  readonly tlsSetup: string
  readonly write: PhaseReport
  readonly read: PhaseReport
  /** With --cas, on systems that have a compare-and-set here (not Redis). */
  readonly cas?: PhaseReport
  /** With --watchers, for a system that can be watched: the writes again, with watchers. */
  readonly watch?: WatchPhaseReport
}

/** The watch phase: its writes (`load`) and what the watchers saw of them. */
export interface WatchPhaseReport extends PhaseReport {
  readonly watchers: FanoutStats
}

export interface RunSettings {
  readonly group: ProcessGroup
  readonly binaries: ServerBinaries
  readonly seconds: number
  /** Unmeasured load of the same operations before each phase (CompareOptions.warmupSeconds). */
  readonly warmupSeconds: number
  readonly concurrency: number
  readonly keys: number
  readonly watchers: number
  /** Run the compare-and-set phase after the reads, where the driver has one. */
  readonly cas: boolean
  readonly log: (line: string) => void
  readonly progress: (line: string) => void
  /** Certificates when this run is the TLS one. */
  readonly tls?: CompareTls
}

/** Starts one system, runs its write phase then its read phase, and stops it again. */
export async function runSystem(driver: SystemDriver, settings: RunSettings): Promise<SystemReport> {
  const { group, binaries, concurrency, log } = settings
  const version = driver.version(binaries)
  const label = settings.tls === undefined ? driver.name : `${driver.name}+tls`
  log(`${label}: starting ${version}${settings.tls === undefined ? '' : ' with TLS'}`)
  const running = await driver.start({ group, binaries, concurrency, workload: new Workload(settings.keys), ...(settings.tls === undefined ? {} : { tls: settings.tls }) })
  try {
    const phase = async (name: PhaseName, operationName: string, operation: Operation): Promise<PhaseReport> => {
      log(`${label}: ${name} phase (${operationName}), ${settings.seconds} s at ${concurrency} in flight${settings.warmupSeconds > 0 ? ` after ${settings.warmupSeconds} s of warm-up` : ''}`)
      if (settings.warmupSeconds > 0) {
        await runClosedLoop({
          concurrency,
          durationMs: settings.warmupSeconds * 1000,
          operation,
          onProgress: (progress: LoadProgress) => settings.progress(progressLine(label, name, progress, 'warm-up')),
        })
      }
      const before = running.servers.map(server => sampleProcess(server.pid))
      const clientBefore = process.cpuUsage()
      const result = await runClosedLoop({
        concurrency,
        durationMs: settings.seconds * 1000,
        operation,
        onProgress: (progress: LoadProgress) => settings.progress(progressLine(label, name, progress)),
      })
      const clientCpu = process.cpuUsage(clientBefore)
      const dead = running.servers.map(server => server.death()).find(death => death !== undefined)
      if (dead !== undefined) throw new Error(`a server died during the ${name} phase: ${dead}`)
      const servers = running.servers.map((server, i) => usage(server, before[i] as ProcessSample))
      log(`${label}: ${name} ${Math.round(result.total.opsPerSecond)} ops/s, p99 ${result.total.latencyMs.p99.toFixed(2)} ms, ${errorCount(result.total)} errors`)
      const clientCpuSeconds = (clientCpu.user + clientCpu.system) / MICROSECONDS_PER_SECOND
      return { phase: name, operation: operationName, elapsedMs: result.elapsedMs, load: result.total, servers, clientCpuSeconds }
    }
    const write = await phase('write', driver.writeOperation, running.write)
    const read = await phase('read', driver.readOperation, running.read)
    const cas = settings.cas && running.cas !== undefined && driver.casOperation !== undefined
      ? await phase('cas', driver.casOperation, running.cas)
      : undefined
    const base = { system: driver.name, tls: settings.tls !== undefined, version, ackPromise: driver.ackPromise, tlsSetup: driver.tlsSetup, write, read, ...(cas === undefined ? {} : { cas }) }
    const watchDriver = running.watch
    if (settings.watchers === 0 || watchDriver === undefined || driver.watchOperation === undefined) {
      return base
    }
    // The same writes as the write phase, now with watchers on the prefix every key starts with.
    const latency = new FanoutLatency(settings.watchers)
    log(`${driver.name}: opening ${settings.watchers} watchers`)
    await watchDriver.open(settings.watchers, id => latency.delivered(id))
    try {
      const writes = await phase('watch', `${driver.writeOperation}, ${settings.watchers} × ${driver.watchOperation}`, worker => watchDriver.write(worker, id => latency.acked(id)))
      await drain(latency, WATCH_DRAIN_TIMEOUT_MS)
      const watchers = latency.stats(writes.elapsedMs)
      log(`${driver.name}: watch p99 ${watchers.latencyMs.p99.toFixed(2)} ms, ${Math.round(watchers.eventsPerSecond)} events/s, ${watchers.missed} missed`)
      return { ...base, watch: { ...writes, watchers } }
    } finally {
      await watchDriver.close()
    }
  } finally {
    await running.close()
  }
}

function usage(server: ServerProcess, before: ProcessSample): ServerUsage {
  const after = sampleProcess(server.pid)
  return {
    name: server.name,
    pid: server.pid,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds,
    rssBytes: after.rssBytes,
    peakRssBytes: after.peakRssBytes,
  }
}

export function errorCount(stats: KindStats): number {
  return Object.values(stats.errors).reduce((sum, count) => sum + count, 0)
}

function progressLine(system: string, phase: PhaseName, progress: LoadProgress, stage = ''): string {
  return `${system} ${phase}${stage === '' ? '' : ` ${stage}`} ${(progress.elapsedMs / 1000).toFixed(0)} s: ${progress.completed} ops, ${Math.round(progress.opsPerSecond)} ops/s, ${progress.errors} errors`
}
