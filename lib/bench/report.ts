import { formatTable } from '../client/cli-output.js'
import type { BenchSettings } from './args.js'
import type { SweepPlot } from './plot.js'
import type { KindStats, LoadResult } from './closed-loop.js'
import type { BenchReport, BenchResult, SweepReport, SweepRun } from './run.js'
import type { StalenessPhase } from './staleness.js'
import type { WatchStats } from './watch-latency.js'

const LATENCY_HEADER = ['P50 MS', 'P90 MS', 'P95 MS', 'P99 MS', 'MAX MS']

/** The table of one run: a row per operation kind, plus a total row when there are several. */
export function formatBenchReport(report: BenchReport): string {
  const rows = kindRows(report.result)
  const notes = [describeLoad(report.settings, report.nodes.length, report.result)]
  const schedule = scheduleNote(report.result)
  if (schedule !== undefined) notes.push(schedule)
  if (report.getMisses > 0) notes.push(`${report.getMisses} gets found no value (key not written yet; counted as successes)`)
  const load = formatTable(['OP', 'OPS', 'OPS/S', ...LATENCY_HEADER, 'ERRORS'], rows) + notes.map(note => note + '\n').join('')
  return report.watch === undefined ? load : load + '\n' + formatWatchStats(report.watch)
}

/** The watch table of `--watchers`: fan-out rate and write-acknowledged → delivered latency. */
export function formatWatchStats(watch: WatchStats): string {
  const { p50, p90, p95, p99, max } = watch.latencyMs
  const table = formatTable(
    ['WATCHERS', 'EVENTS', 'EVENTS/S', ...LATENCY_HEADER, 'MISSED', 'RECONNECTS'],
    [[String(watch.watchers), String(watch.events), rate(watch.eventsPerSecond), ...[p50, p90, p95, p99, max].map(ms => ms.toFixed(2)), String(watch.missed), String(watch.reconnects)]],
  )
  const notes = ['watch latency: from a put\'s acknowledgement at the bench to the change\'s arrival at each watcher; EVENTS: changes delivered to all watchers together']
  if (watch.beforeAck > 0) notes.push(`${watch.beforeAck} deliveries arrived before the put's acknowledgement (counted as 0 ms)`)
  if (watch.missed > 0) notes.push(`MISSED: deliveries owed that had not arrived a few seconds after the load ended`)
  if (watch.untracked > 0) notes.push(`${watch.untracked} puts were not tracked (too many deliveries pending)`)
  return table + notes.map(note => note + '\n').join('')
}

/**
 * The sweep table: per write level, the writes' throughput and latency, then the staleness
 * counts whose reads add up (reads = sampled writes × nodes = stale + fresh + failed).
 */
export function formatSweepReport(report: SweepReport, plotFile: string): string {
  const settleMs = report.settings.sweep?.settleMs ?? 0
  const latency = formatTable(
    ['W', 'PUTS', 'PUTS/S', ...LATENCY_HEADER, 'ERRORS'],
    report.runs.map(run => {
      const puts = writeStats(run)
      return [String(run.w), String(puts.count), rate(puts.opsPerSecond), ...latencyCells(puts), errorsCell(puts.errors)]
    }),
  )
  const staleness = formatTable(
    ['W', 'SAMPLED', 'READS', 'STALE NOW', `STALE AFTER ${settleMs}ms`, 'FAILED READS'],
    report.runs.map(run => {
      const { sampledWrites, immediate, afterSettle } = run.staleness
      return [String(run.w), String(sampledWrites), String(immediate.reads), staleCell(immediate), staleCell(afterSettle), String(immediate.failed + afterSettle.failed)]
    }),
  )
  const first = report.runs[0]
  return [
    latency,
    '\n',
    staleness,
    first === undefined ? '' : describeLoad(report.settings, report.nodes.length, first.result) + ' per level\n',
    ...report.runs.flatMap(run => {
      const note = scheduleNote(run.result)
      return note === undefined ? [] : [`w=${run.w}: ${note}\n`]
    }),
    `READS is per moment (right after the ack, and again after ${settleMs}ms): each sampled write read with R=1 from each of ${report.nodes.length} node(s)\n`,
    `plot written to ${plotFile}\n`,
  ].join('')
}

/** The writes of a sweep run (a sweep always has writes; the total stands in if none completed). */
export function writeStats(run: SweepRun): KindStats {
  return run.result.byKind.put ?? run.result.total
}

/** Stale reads as a share of the reads that answered, in percent (0 when none did). */
export function stalePercent(phase: StalenessPhase): number {
  const answered = phase.stale + phase.fresh
  return answered === 0 ? 0 : phase.stale * 100 / answered
}

function kindRows(result: LoadResult): string[][] {
  const kinds = Object.entries(result.byKind) as [string, KindStats][]
  const rows = kinds.map(([kind, stats]) => statsRow(kind, stats))
  if (kinds.length !== 1) rows.push(statsRow('total', result.total))
  return rows
}

function statsRow(label: string, stats: KindStats): string[] {
  return [label, String(stats.count), rate(stats.opsPerSecond), ...latencyCells(stats), errorsCell(stats.errors)]
}

function latencyCells(stats: KindStats): string[] {
  const { p50, p90, p95, p99, max } = stats.latencyMs
  return [p50, p90, p95, p99, max].map(ms => ms.toFixed(2))
}

function rate(opsPerSecond: number): string {
  return String(Math.round(opsPerSecond))
}

function errorsCell(errors: Readonly<Record<string, number>>): string {
  const entries = Object.entries(errors)
  return entries.length === 0 ? '0' : entries.map(([label, count]) => `${label}=${count}`).join(' ')
}

function staleCell(phase: StalenessPhase): string {
  return `${phase.stale} (${stalePercent(phase).toFixed(1)}%)`
}

/** What the open loop could not do on time, so a reader sees when the load offered was not the load asked for. */
function scheduleNote(result: BenchResult): string | undefined {
  const schedule = result.schedule
  if (schedule === undefined) return undefined
  return `open loop: ${schedule.scheduled} operations scheduled; ${schedule.heldBack} started late because ${schedule.maxInFlight} were in flight ` +
    `(their latency counts from the scheduled start), ${schedule.notStarted} never started before the schedule ended`
}

function describeLoad(settings: BenchSettings, nodeCount: number, result: LoadResult): string {
  const loop = settings.ratePerSecond === undefined ? `${settings.concurrency} in flight` : `${settings.ratePerSecond} ops/s scheduled (open loop, at most ${settings.concurrency} in flight)`
  const mix = typeof settings.mix === 'string'
    ? `${settings.mix === 'cas' ? 'compare-and-set' : 'incr'} only, worker w on key w mod ${settings.keys}`
    : `${settings.mix.put}:${settings.mix.get} put:get`
  const levels = [settings.w === undefined ? '' : `w=${settings.w}`, settings.r === undefined ? '' : `r=${settings.r}`].filter(text => text !== '').join(' ')
  return `${loop} over ${nodeCount} node(s), ${(result.elapsedMs / 1000).toFixed(1)} s, ${mix}, ` +
    `${settings.keyBytes} B keys (${settings.keys} in the key space), ${settings.valueBytes} B values${levels === '' ? '' : `, ${levels}`}`
}

/** The sweep's data in the shape the plot draws. */
export function sweepPlot(report: SweepReport): SweepPlot {
  const first = report.runs[0]
  return {
    title: 'hearsay: what W costs',
    subtitle: first === undefined ? '' : describeLoad(report.settings, report.nodes.length, first.result) + ' per level',
    settleMs: report.settings.sweep?.settleMs ?? 0,
    points: report.runs.map(run => {
      const puts = writeStats(run)
      return {
        label: String(run.w),
        p50Ms: puts.latencyMs.p50,
        p99Ms: puts.latencyMs.p99,
        staleNowPercent: stalePercent(run.staleness.immediate),
        staleAfterSettlePercent: stalePercent(run.staleness.afterSettle),
      }
    }),
  }
}
