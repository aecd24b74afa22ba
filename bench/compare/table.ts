import { hearsayOver, type CompareReport } from './report.js'
import type { PhaseName, PhaseReport, SystemReport } from './run.js'

const MIB = 1024 * 1024
const MICROSECONDS_PER_SECOND = 1_000_000

/** The report as Markdown: a header line, one table, then what an ack means for each system. */
export function formatTable(report: CompareReport): string {
  const { machine, workload } = report
  const lines = [
    `# ${report.date} · ${machine.cpus} CPUs (${machine.cpuModel}) · node ${machine.node} · Linux ${machine.kernel} · data dirs in ${machine.dataDirs.path} (${machine.dataDirs.filesystem}) · load average ${machine.loadAverageAtStart.toFixed(1)} before the run`,
    `# ${report.systems.map(system => system.version).join(', ')} · ${workload.keyBytes} B keys, ${workload.valueBytes} B values, ${workload.keys} keys, ${workload.concurrency} in flight, ${workload.secondsPerPhase} s writes then ${workload.secondsPerPhase} s reads per system`,
    '',
    '| phase | system | operation | ops/s | p50 ms | p99 ms | errors | hearsay ÷ this | server CPU µs/op (all servers) | server CPU s (each) | server RSS MiB (each, at end) | bench client CPU s | bench client CPU µs/op |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|',
  ]
  for (const phase of ['write', 'read'] as const) {
    const hearsay = report.systems.find(system => system.system === 'hearsay')?.[phase]
    for (const system of report.systems) lines.push(row(phase, system, hearsay))
  }
  lines.push('', 'What an acknowledgement means:', '')
  for (const system of report.systems) lines.push(`- **${system.system}**: ${system.ackPromise}.`)
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

function row(phase: PhaseName, system: SystemReport, hearsay: PhaseReport | undefined): string {
  const measured = system[phase]
  const { load } = measured
  const ratio = system.system === 'hearsay' ? '—' : formatRatio(hearsayOver(hearsay?.load.opsPerSecond, load.opsPerSecond))
  const cpu = measured.servers.map(server => server.cpuSeconds.toFixed(1)).join(' / ')
  const rss = measured.servers.map(server => (server.rssBytes / MIB).toFixed(0)).join(' / ')
  const serverCpuSeconds = measured.servers.reduce((sum, server) => sum + server.cpuSeconds, 0)
  return `| ${phase} | ${system.system} | ${measured.operation} | ${Math.round(load.opsPerSecond)} | ${load.latencyMs.p50.toFixed(2)} | ${load.latencyMs.p99.toFixed(2)} | ${formatErrors(load.errors)} | ${ratio} | ` +
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

function formatRatio(ratio: number | undefined): string {
  return ratio === undefined ? 'n/a' : `${ratio.toFixed(2)}×`
}

function formatErrors(errors: Readonly<Record<string, number>>): string {
  const total = Object.values(errors).reduce((sum, count) => sum + count, 0)
  if (total === 0) return '0'
  return Object.entries(errors).map(([label, count]) => `${count} ${label}`).join(', ')
}
