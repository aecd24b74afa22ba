import { constants } from 'node:fs'
import { access, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import type { Writable } from 'node:stream'
import { writeOut } from '../client/cli-output.js'
import { UsageError, type CommandContext } from '../client/command.js'
import { parseTimeoutOption } from '../client/duration-option.js'
import { parseBenchArgs } from './args.js'
import type { KindStats } from './closed-loop.js'
import { renderSweepSvg } from './plot.js'
import { createProgressLine } from './progress.js'
import { formatBenchReport, formatSweepReport, sweepPlot } from './report.js'
import { runBench, runSweep, type BenchTarget, type ProgressListener } from './run.js'

/**
 * `hearsay bench`: closed-loop load over every --node, a table or JSON at the end; with
 * --sweep one run per write level, a staleness count per level and an SVG plot.
 * Exit code 1 when not a single operation succeeded (the table still shows why).
 */
export async function runBenchCommand(context: CommandContext): Promise<number> {
  const settings = parseBenchArgs(context.options)
  const target = benchTarget(context)
  const plotFile = settings.sweep === undefined ? undefined : resolve(settings.sweep.plotFile)
  // A sweep can run for minutes; find out now, not at the end, that its plot cannot be written.
  if (plotFile !== undefined) await checkWritableDirectory(plotFile)

  const progress = context.json ? undefined : createProgressLine(context.io.stderr as Writable & { readonly isTTY?: boolean })
  const onProgress: ProgressListener | undefined = progress === undefined ? undefined : (label, state) => progress.update(label, state)
  try {
    if (plotFile === undefined) {
      const report = await runBench(settings, target, onProgress)
      progress?.end()
      await writeOut(context.io.stdout, context.json ? JSON.stringify(report) + '\n' : formatBenchReport(report))
      return exitCode(context, [report.result.total])
    }
    const report = await runSweep(settings, target, onProgress)
    progress?.end()
    await writeFile(plotFile, renderSweepSvg(sweepPlot(report)))
    await writeOut(context.io.stdout, context.json ? JSON.stringify({ ...report, plotFile }) + '\n' : formatSweepReport(report, plotFile))
    return exitCode(context, report.runs.map(run => run.result.total))
  } finally {
    progress?.end()
  }
}

function benchTarget(context: CommandContext): BenchTarget {
  const token = context.options['token']
  const envToken = context.io.env['HEARSAY_TOKEN']
  const timeout = context.options['timeout']
  return {
    // The CLI's client has parsed and validated --node / HEARSAY_NODE; the bench opens its own per node.
    nodes: context.client().nodes,
    token: typeof token === 'string' ? token : envToken === undefined || envToken === '' ? undefined : envToken,
    timeoutMs: typeof timeout === 'string' ? parseTimeoutOption(timeout) : undefined,
  }
}

async function checkWritableDirectory(file: string): Promise<void> {
  try {
    await access(dirname(file), constants.W_OK)
  } catch {
    throw new UsageError(`--plot ${file}: the directory ${dirname(file)} does not exist or is not writable`)
  }
}

async function exitCode(context: CommandContext, totals: readonly KindStats[]): Promise<number> {
  const failed = (stats: KindStats): number => Object.values(stats.errors).reduce((sum, count) => sum + count, 0)
  if (totals.some(stats => stats.count > failed(stats))) return 0
  await writeOut(context.io.stderr, 'hearsay: bench: no operation succeeded; the ERRORS column says why\n')
  return 1
}
