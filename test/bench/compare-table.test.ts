import t from 'tap'
import type { CompareReport } from '../../bench/compare/report.js'
import type { PhaseReport, SystemReport } from '../../bench/compare/run.js'
import { cpuMicrosPerOperation, formatRoundsSummary, formatTable } from '../../bench/compare/table.js'
import { summarizeRatios } from '../../bench/compare/report.js'

const latencyMs = { p50: 1, p90: 2, p95: 3, p99: 4, max: 5, mean: 1.5 }

function phase(name: 'write' | 'read', count: number, errors: Record<string, number>, serverCpuSeconds: readonly number[], clientCpuSeconds: number): PhaseReport {
  return {
    phase: name,
    operation: name === 'write' ? 'put' : 'get',
    elapsedMs: 10_000,
    load: { count, errors, opsPerSecond: count / 10, latencyMs },
    servers: serverCpuSeconds.map((cpuSeconds, i) => ({ name: `s${i}`, pid: 100 + i, cpuSeconds, rssBytes: 64 * 1024 * 1024, peakRssBytes: 64 * 1024 * 1024 })),
    clientCpuSeconds,
  }
}

function system(name: SystemReport['system'], write: PhaseReport, read: PhaseReport): SystemReport {
  return { system: name, tls: false, version: `${name} 1.0`, ackPromise: 'written', tlsSetup: 'none', write, read }
}

const report: CompareReport = {
  date: '2026-12-06T10:00:00.000Z',
  machine: { cpus: 2, cpuModel: 'test CPU', node: 'v20', kernel: '6.1', loadAverageAtStart: 1, dataDirs: { path: '/tmp', filesystem: 'ext4' } },
  workload: { keyBytes: 16, valueBytes: 100, keys: 1000, concurrency: 64, secondsPerPhase: 10, warmupSecondsPerPhase: 5 },
  systems: [
    // 10,000 writes, 9,000 of them acknowledged, 0.9 + 0.8 + 0.5 = 2.2 CPU s: 2.2e6 µs / 9000 ≈ 244 µs each.
    system('hearsay', phase('write', 10_000, { unavailable_503: 1000 }, [0.9, 0.8, 0.5], 1.8), phase('read', 20_000, {}, [0.5, 0.3, 0.2], 2)),
    system('redis', phase('write', 20_000, {}, [1.2, 0.3, 0.38], 1.2), phase('read', 40_000, {}, [1, 0, 0], 2.4)),
    system('etcd', phase('write', 5, { timeout: 5 }, [0.1, 0.1, 0.1], 0.1), phase('read', 5000, {}, [0.4, 0.3, 0.3], 0.5)),
  ],
  ratios: {},
  tlsCost: [],
}

t.test('CPU µs per operation sums every server and divides by the acknowledged operations', async t => {
  t.equal(Math.round(cpuMicrosPerOperation(2.2, report.systems[0]!.write.load)!), 244)
  t.equal(cpuMicrosPerOperation(0.3, report.systems[2]!.write.load), undefined, 'nothing succeeded: no per-operation cost')
})

t.test('the table says how long each phase was warmed up, and says nothing when it was not', async t => {
  t.match(formatTable(report), /each phase after 5 s of the same load not measured/)
  t.notMatch(formatTable({ ...report, workload: { ...report.workload, warmupSecondsPerPhase: 0 } }), /not measured/)
})

t.test('the compare table has the CPU-per-operation columns for every system', async t => {
  const table = formatTable(report)
  const lines = table.split('\n')
  const header = lines.find(line => line.startsWith('| phase'))!.split('|').map(cell => cell.trim())
  const serverColumn = header.indexOf('server CPU µs/op (all servers)')
  const clientColumn = header.indexOf('bench client CPU µs/op')
  t.ok(serverColumn > 0 && clientColumn > 0, 'both columns are in the header')
  const cell = (phaseName: string, systemName: string, column: number): string => {
    const row = lines.find(line => line.startsWith(`| ${phaseName} | ${systemName} |`))
    t.ok(row, `${phaseName} ${systemName} has a row`)
    const cells = (row ?? '').split('|').map(text => text.trim())
    t.equal(cells.length, header.length, 'the row has as many cells as the header')
    return cells[column] ?? ''
  }
  t.equal(cell('write', 'hearsay', serverColumn), '244')
  t.equal(cell('write', 'redis', serverColumn), '94', '1.88 CPU s over 20,000 writes')
  t.equal(cell('write', 'etcd', serverColumn), 'n/a')
  t.equal(cell('read', 'hearsay', serverColumn), '50')
  t.equal(cell('read', 'redis', serverColumn), '25')
  t.equal(cell('write', 'hearsay', clientColumn), '200', '1.8 client CPU s over 9,000 acknowledged writes')
  t.equal(cell('read', 'etcd', clientColumn), '100')
  t.match(table, /CPU µs\/op divides CPU time by the operations that succeeded/)
})

t.test('--rounds: each ratio over the rounds, its median, lowest and highest, rounds without it left out', async t => {
  const rounds = [{ casVsEtcd: 3.1, writeVsEtcd: 3.6 }, { casVsEtcd: 2.96 }, { casVsEtcd: 2.99, writeVsEtcd: 3.3 }].map(ratios => ({ ...report, ratios }))
  t.strictSame(summarizeRatios(rounds), [
    { ratio: 'writeVsEtcd', values: [3.6, 3.3], median: 3.3, lowest: 3.3, highest: 3.6 },
    { ratio: 'casVsEtcd', values: [3.1, 2.96, 2.99], median: 2.99, lowest: 2.96, highest: 3.1 },
  ])
  const summary = formatRoundsSummary(rounds)
  t.match(summary, /^# 3 rounds/)
  t.match(summary, /\| cas: hearsay ÷ etcd txn \| 2\.99× \| 2\.96× \| 3\.10× \| 3\.10×, 2\.96×, 2\.99× \|/)
  t.notMatch(summary, /Redis/, 'a ratio no round measured is not listed')
})

t.test('with --cas the table names the floors, the bare pipeline among them', async t => {
  const bounds = {
    fsyncP50Ms: 0.1, loopbackRoundTripP50Ms: 0.03, casFloorMs: 0.26, processRoundTripP50Ms: 0.05,
    journalSyncP50Ms: 0.25, lmdbCommitP50Ms: 0.5, loneCasFloorMs: 0.35,
  }
  const withPipeline = formatTable({ ...report, bounds, pipeline: { p50Ms: 0.61, p90Ms: 0.7, p99Ms: 2.5, opsPerSec: 1600, cpuUs: 430 } })
  t.match(withPipeline, /CAS floor on this machine: .* = 0\.26 ms/)
  t.match(withPipeline, /The bare pipeline \(bench\/pipeline-floor\.ts\).* p50 0\.61 ms \(p99 2\.50 ms\)/)
  t.notMatch(formatTable({ ...report, bounds }), /bare pipeline/, 'no line when it was not measured')
})
