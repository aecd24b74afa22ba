import { hearsayOver, summarizeRatios, type CompareReport, type RatioSummary } from './report.js'
import type { PhaseName, PhaseReport, SystemReport } from './run.js'

const MIB = 1024 * 1024
const MICROSECONDS_PER_SECOND = 1_000_000

/** The report as Markdown: a header line, one table, then what an ack means for each system. */
export function formatTable(report: CompareReport): string {
  const { machine, workload } = report
  const lines = [
    `# ${report.date} · ${machine.cpus} CPUs (${machine.cpuModel}) · node ${machine.node} · Linux ${machine.kernel} · data dirs in ${machine.dataDirs.path} (${machine.dataDirs.filesystem}) · load average ${machine.loadAverageAtStart.toFixed(1)} before the run`,
    `# ${[...new Set(report.systems.map(system => system.version))].join(', ')} · ${workload.keyBytes} B keys, ${workload.valueBytes} B values, ${workload.keys} keys, ${workload.concurrency} in flight, ${workload.secondsPerPhase} s writes then ${workload.secondsPerPhase} s reads${report.bounds === undefined ? '' : ` then ${workload.secondsPerPhase} s compare-and-set`} per system${workload.warmupSecondsPerPhase > 0 ? `, each phase after ${workload.warmupSecondsPerPhase} s of the same load not measured` : ''}`,
    ...(report.bounds === undefined ? [] : [
      `# CAS floor on this machine: 2 loopback round trips (p50 ${report.bounds.loopbackRoundTripP50Ms.toFixed(3)} ms each) + 2 fsyncs (p50 ${report.bounds.fsyncP50Ms.toFixed(3)} ms each, 4 KiB in the data dirs' filesystem) = ${report.bounds.casFloorMs.toFixed(2)} ms`,
      `# What separate processes pay on this machine: a round trip to another process p50 ${report.bounds.processRoundTripP50Ms.toFixed(3)} ms, a lone acceptor journal sync p50 ${report.bounds.journalSyncP50Ms.toFixed(3)} ms (a lone lmdb-js commit, what a plain write's replica pays: ${report.bounds.lmdbCommitP50Ms.toFixed(3)} ms); a lone one-round-trip CAS through a coordinator = 2 such round trips + 1 journal sync = ${report.bounds.loneCasFloorMs.toFixed(2)} ms`,
      ...(report.pipeline === undefined ? [] : [`# The bare pipeline (bench/pipeline-floor.ts): a lone CAS's frames through 4 Node.js processes that only relay them and sync their journals, p50 ${report.pipeline.p50Ms.toFixed(2)} ms (p99 ${report.pipeline.p99Ms.toFixed(2)} ms)`]),
    ]),
    '',
    '| phase | system | operation | ops/s | p50 ms | p99 ms | errors | hearsay ÷ this | server CPU µs/op (all servers) | server CPU s (each) | server RSS MiB (each, at end) | bench client CPU s | bench client CPU µs/op |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|',
  ]
  for (const phase of ['write', 'read', 'cas'] as const) {
    for (const system of report.systems) {
      // hearsay against the others with the same transport: plaintext with plaintext, TLS with TLS.
      const hearsay = report.systems.find(other => other.system === 'hearsay' && other.tls === system.tls)?.[phase]
      const measured = system[phase]
      if (measured !== undefined) lines.push(row(phase, system, measured, hearsay))
    }
  }
  if (report.tlsCost.length > 0) lines.push('', ...tlsCostTable(report))
  const watched = report.systems.filter(system => system.watch !== undefined)
  if (watched.length > 0) lines.push('', ...watchTable(watched))
  lines.push('', 'What an acknowledgement means:', '')
  for (const system of report.systems.filter(system => !system.tls)) lines.push(`- **${system.system}**: ${system.ackPromise}.`)
  if (report.tlsCost.length > 0) {
    lines.push('', 'What --tls turns on:', '')
    for (const system of report.systems.filter(system => system.tls)) lines.push(`- **${system.system}**: ${system.tlsSetup}.`)
  }
  lines.push(
    '',
    'One system runs at a time (the others are stopped), and the load generator (one Node.js',
    'process) shares the machine with the servers. CPU s is user + system time of each server',
    'process during the phase (/proc/PID/stat); RSS is VmRSS at the end of the phase; bench client',
    'CPU s is the load generator\'s own CPU time in the phase (a client near one core is a limit too).',
    'CPU µs/op divides CPU time by the operations that succeeded in the phase: summed over all of a',
    'system\'s servers, it is what one acknowledged operation costs the cluster.',
  )
  return lines.join('\n')
}

function row(phase: PhaseName, system: SystemReport, measured: PhaseReport, hearsay: PhaseReport | undefined): string {
  const { load } = measured
  const ratio = system.system === 'hearsay' ? '—' : formatRatio(hearsayOver(hearsay?.load.opsPerSecond, load.opsPerSecond))
  const cpu = measured.servers.map(server => server.cpuSeconds.toFixed(1)).join(' / ')
  const rss = measured.servers.map(server => (server.rssBytes / MIB).toFixed(0)).join(' / ')
  const serverCpuSeconds = measured.servers.reduce((sum, server) => sum + server.cpuSeconds, 0)
  return `| ${phase} | ${system.system}${system.tls ? ' + TLS' : ''} | ${measured.operation} | ${Math.round(load.opsPerSecond)} | ${load.latencyMs.p50.toFixed(2)} | ${load.latencyMs.p99.toFixed(2)} | ${formatErrors(load.errors)} | ${ratio} | ` +
    `${formatMicros(cpuMicrosPerOperation(serverCpuSeconds, load))} | ${cpu} | ${rss} | ${measured.clientCpuSeconds.toFixed(1)} | ${formatMicros(cpuMicrosPerOperation(measured.clientCpuSeconds, load))} |`
}

/** CPU microseconds per successful operation of the phase; undefined when none succeeded. */
export function cpuMicrosPerOperation(cpuSeconds: number, load: PhaseReport['load']): number | undefined {
  const failed = Object.values(load.errors).reduce((sum, count) => sum + count, 0)
  const succeeded = load.count - failed
  return succeeded > 0 ? cpuSeconds * MICROSECONDS_PER_SECOND / succeeded : undefined
}

function formatMicros(micros: number | undefined): string {
  return micros === undefined ? 'n/a' : micros.toFixed(0)
}

/** What TLS costs each system: the TLS run against the plaintext run of the same invocation. */
function tlsCostTable(report: CompareReport): string[] {
  const lines = [
    'What TLS costs (TLS run ÷ plaintext run of the same system, back to back):',
    '',
    '| system | phase | plain ops/s | TLS ops/s | TLS ÷ plain | server CPU µs/op plain → TLS | client CPU µs/op plain → TLS |',
    '|---|---|---:|---:|---:|---|---|',
  ]
  for (const cost of report.tlsCost) {
    lines.push(`| ${cost.system} | ${cost.phase} | ${Math.round(cost.plainOpsPerSecond)} | ${Math.round(cost.tlsOpsPerSecond)} | ${(cost.throughputRatio * 100).toFixed(0)} % `
      + `| ${cost.plainServerCpuUsPerOp.toFixed(0)} → ${cost.tlsServerCpuUsPerOp.toFixed(0)} | ${cost.plainClientCpuUsPerOp.toFixed(0)} → ${cost.tlsClientCpuUsPerOp.toFixed(0)} |`)
  }
  return lines
}

function formatRatio(ratio: number | undefined): string {
  return ratio === undefined ? 'n/a' : `${ratio.toFixed(2)}×`
}

function formatErrors(errors: Readonly<Record<string, number>>): string {
  const total = Object.values(errors).reduce((sum, count) => sum + count, 0)
  if (total === 0) return '0'
  return Object.entries(errors).map(([label, count]) => `${count} ${label}`).join(', ')
}

/** The watch phase: the same writes again with watchers, and how fast each change reached them. */
function watchTable(systems: readonly SystemReport[]): string[] {
  const lines = [
    '| watch phase | operation | writes/s | write p99 ms | events/s fanned out | watch p50 ms | watch p99 ms | watch max ms | missed | before ack | server CPU s (each) | bench client CPU s |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ]
  for (const system of systems) {
    const watch = system.watch
    if (watch === undefined) continue
    const { load, watchers } = watch
    const cpu = watch.servers.map(server => server.cpuSeconds.toFixed(1)).join(' / ')
    lines.push(`| ${system.system} | ${watch.operation} | ${Math.round(load.opsPerSecond)} | ${load.latencyMs.p99.toFixed(2)} | ${Math.round(watchers.eventsPerSecond)} | ` +
      `${watchers.latencyMs.p50.toFixed(2)} | ${watchers.latencyMs.p99.toFixed(2)} | ${watchers.latencyMs.max.toFixed(2)} | ${watchers.missed} | ${watchers.beforeAck} | ${cpu} | ${watch.clientCpuSeconds.toFixed(1)} |`)
  }
  lines.push('', 'Watch latency: from the write\'s acknowledgement at the bench to the change\'s arrival at each watcher, per delivery (0 when it arrived first: "before ack"); missed: deliveries not there 10 s after the writes ended.')
  return lines
}

const RATIO_LABELS: Readonly<Record<RatioSummary['ratio'], string>> = {
  writeVsEtcd: 'write: hearsay ÷ etcd',
  writeVsRedis: 'write: hearsay ÷ Redis',
  readVsEtcd: 'read: hearsay ÷ etcd',
  readVsRedis: 'read: hearsay ÷ Redis',
  casVsEtcd: 'cas: hearsay ÷ etcd txn',
}

/** After --rounds N: each hearsay ratio per round, its median, lowest and highest. */
export function formatRoundsSummary(reports: readonly CompareReport[]): string {
  const lines = [
    `# ${reports.length} rounds, each system in turn per round (hearsay ÷ the other's ops/s in the same round)`,
    '',
    '| ratio | median | lowest | highest | per round |',
    '|---|---:|---:|---:|---|',
  ]
  for (const summary of summarizeRatios(reports)) {
    lines.push(`| ${RATIO_LABELS[summary.ratio]} | ${formatRatio(summary.median)} | ${formatRatio(summary.lowest)} | ${formatRatio(summary.highest)} | ${summary.values.map(value => formatRatio(value)).join(', ')} |`)
  }
  return lines.join('\n')
}
