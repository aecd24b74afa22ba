import { readFileSync, realpathSync } from 'node:fs'
import { availableParallelism, cpus, release, tmpdir } from 'node:os'
import type { CompareOptions } from './args.js'
import type { Bounds } from './bounds.js'
import type { PipelineResult } from '../pipeline-floor.js'
import type { PhaseReport, SystemReport } from './run.js'
import { KEY_BYTES, VALUE_BYTES } from './workload.js'

export interface Machine {
  /** Like `nproc`: the CPUs this process may use. */
  readonly cpus: number
  readonly cpuModel: string
  readonly node: string
  readonly kernel: string
  /** 1-minute load average before the first server started: other work on the machine skews the numbers. */
  readonly loadAverageAtStart: number
  /** Where every server keeps its data: fsync cost depends on it (tmpfs makes it free). */
  readonly dataDirs: { readonly path: string; readonly filesystem: string }
}

/** hearsay's ops/s divided by the other system's, per phase; undefined when either did not run. */
export interface Ratios {
  readonly writeVsEtcd?: number
  readonly writeVsRedis?: number
  readonly readVsEtcd?: number
  readonly readVsRedis?: number
  readonly casVsEtcd?: number
}

export interface CompareReport {
  readonly date: string
  readonly machine: Machine
  readonly workload: {
    readonly keyBytes: number
    readonly valueBytes: number
    readonly keys: number
    readonly concurrency: number
    readonly secondsPerPhase: number
    /** Unmeasured load of the same operations before each phase. */
    readonly warmupSecondsPerPhase: number
  }
  readonly systems: readonly SystemReport[]
  /** hearsay over the others, plaintext runs. */
  readonly ratios: Ratios
  /** With --cas: this machine's fsync and loopback round trip, the floor of a CAS (2 of each). */
  readonly bounds?: Bounds
  /** With --cas: a lone CAS's frames through four bare Node.js processes (bench/pipeline-floor.ts). */
  readonly pipeline?: PipelineResult
  /** With --tls: per system and phase, the TLS run against the plaintext one. */
  readonly tlsCost: readonly TlsCost[]
}

export interface TlsCost {
  readonly system: SystemReport['system']
  readonly phase: 'write' | 'read'
  readonly plainOpsPerSecond: number
  readonly tlsOpsPerSecond: number
  /** TLS ops/s ÷ plaintext ops/s. */
  readonly throughputRatio: number
  /** CPU of all three servers per operation, in microseconds. */
  readonly plainServerCpuUsPerOp: number
  readonly tlsServerCpuUsPerOp: number
  /** The load generator's CPU per operation, in microseconds. */
  readonly plainClientCpuUsPerOp: number
  readonly tlsClientCpuUsPerOp: number
}

export function buildReport(options: CompareOptions, systems: readonly SystemReport[], date: Date, loadAverageAtStart: number, bounds?: Bounds, pipeline?: PipelineResult): CompareReport {
  return {
    date: date.toISOString(),
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      node: process.version,
      kernel: release(),
      loadAverageAtStart,
      dataDirs: { path: tmpdir(), filesystem: filesystemOf(tmpdir()) },
    },
    workload: { keyBytes: KEY_BYTES, valueBytes: VALUE_BYTES, keys: options.keys, concurrency: options.concurrency, secondsPerPhase: options.seconds, warmupSecondsPerPhase: options.warmupSeconds },
    systems,
    ratios: ratios(systems.filter(system => !system.tls)),
    tlsCost: tlsCost(systems),
    ...(bounds === undefined ? {} : { bounds }),
    ...(pipeline === undefined ? {} : { pipeline }),
  }
}

function tlsCost(systems: readonly SystemReport[]): TlsCost[] {
  const costs: TlsCost[] = []
  for (const plain of systems.filter(system => !system.tls)) {
    const secured = systems.find(system => system.tls && system.system === plain.system)
    if (secured === undefined) continue
    for (const phase of ['write', 'read'] as const) {
      const before = plain[phase]
      const after = secured[phase]
      costs.push({
        system: plain.system,
        phase,
        plainOpsPerSecond: before.load.opsPerSecond,
        tlsOpsPerSecond: after.load.opsPerSecond,
        throughputRatio: before.load.opsPerSecond > 0 ? after.load.opsPerSecond / before.load.opsPerSecond : 0,
        plainServerCpuUsPerOp: perOp(before.servers.reduce((sum, server) => sum + server.cpuSeconds, 0), before),
        tlsServerCpuUsPerOp: perOp(after.servers.reduce((sum, server) => sum + server.cpuSeconds, 0), after),
        plainClientCpuUsPerOp: perOp(before.clientCpuSeconds, before),
        tlsClientCpuUsPerOp: perOp(after.clientCpuSeconds, after),
      })
    }
  }
  return costs
}

const MICROSECONDS_PER_SECOND = 1e6

/** CPU seconds spread over the phase's operations, in microseconds each. */
function perOp(cpuSeconds: number, phase: PhaseReport): number {
  const ops = phase.load.count
  return ops > 0 ? cpuSeconds * MICROSECONDS_PER_SECOND / ops : 0
}

function ratios(systems: readonly SystemReport[]): Ratios {
  const find = (name: SystemReport['system']): SystemReport | undefined => systems.find(system => system.system === name)
  const hearsay = find('hearsay')
  const etcd = find('etcd')
  const redis = find('redis')
  return {
    writeVsEtcd: hearsayOver(hearsay?.write.load.opsPerSecond, etcd?.write.load.opsPerSecond),
    writeVsRedis: hearsayOver(hearsay?.write.load.opsPerSecond, redis?.write.load.opsPerSecond),
    readVsEtcd: hearsayOver(hearsay?.read.load.opsPerSecond, etcd?.read.load.opsPerSecond),
    readVsRedis: hearsayOver(hearsay?.read.load.opsPerSecond, redis?.read.load.opsPerSecond),
    casVsEtcd: hearsayOver(hearsay?.cas?.load.opsPerSecond, etcd?.cas?.load.opsPerSecond),
  }
}

/** One hearsay ratio over several rounds (--rounds). */
export interface RatioSummary {
  readonly ratio: keyof Ratios
  /** Per round in order; rounds where it was not measured are left out. */
  readonly values: readonly number[]
  readonly median: number
  readonly lowest: number
  readonly highest: number
}

/** Each ratio measured in any of the rounds: its values, median (the lower middle of an even count), lowest and highest. */
export function summarizeRatios(reports: readonly CompareReport[]): RatioSummary[] {
  const names: (keyof Ratios)[] = ['writeVsEtcd', 'writeVsRedis', 'readVsEtcd', 'readVsRedis', 'casVsEtcd']
  const summaries: RatioSummary[] = []
  for (const ratio of names) {
    const values = reports.map(report => report.ratios[ratio]).filter((value): value is number => value !== undefined)
    if (values.length === 0) continue
    const sorted = [...values].sort((a, b) => a - b)
    summaries.push({ ratio, values, median: sorted[Math.floor((sorted.length - 1) / 2)] as number, lowest: sorted[0] as number, highest: sorted[sorted.length - 1] as number })
  }
  return summaries
}

export function hearsayOver(hearsayOpsPerSecond: number | undefined, otherOpsPerSecond: number | undefined): number | undefined {
  if (hearsayOpsPerSecond === undefined || otherOpsPerSecond === undefined || otherOpsPerSecond <= 0) return undefined
  return hearsayOpsPerSecond / otherOpsPerSecond
}

/** The type of the filesystem holding `path`: the longest mount point above it in /proc/mounts. */
function filesystemOf(path: string): string {
  try {
    const real = realpathSync(path)
    let best = { mountPoint: '', type: 'unknown' }
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mountPoint, type] = line.split(' ')
      if (mountPoint === undefined || type === undefined) continue
      const covers = real === mountPoint || real.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`)
      if (covers && mountPoint.length >= best.mountPoint.length) best = { mountPoint, type }
    }
    return best.type
  } catch {
    return 'unknown'
  }
}
