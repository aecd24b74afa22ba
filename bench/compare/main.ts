/**
 * Side-by-side comparison of hearsay with etcd and Redis on this machine (issue 7). Not a test:
 * run by hand (`npm run bench:compare`) and copy the table into docs/benchmarks.md.
 */
import { loadavg } from 'node:os'
import { parseCompareArgs, UsageError, USAGE } from './args.js'
import { makeCompareCertificates, type CompareTls } from './certificates.js'
import { ensureServerBinaries } from './install.js'
import { ProcessGroup, stopOnExit } from './processes.js'
import { measureBounds } from './bounds.js'
import { measurePipeline, type PipelineOptions } from '../pipeline-floor.js'
import { buildReport, type CompareReport } from './report.js'
import { runSystem, type SystemReport } from './run.js'
import type { SystemDriver, SystemName } from './system.js'
import { etcd } from './systems/etcd.js'
import { hearsay } from './systems/hearsay.js'
import { redis } from './systems/redis.js'
import { formatRoundsSummary, formatTable } from './table.js'

const DRIVERS: Readonly<Record<SystemName, SystemDriver>> = { hearsay, etcd, redis }
/** The bare pipeline with --cas, as bench:lone runs it: warm (V8 compiled the path), then measured. */
const PIPELINE_RUN: PipelineOptions = { count: 2000, warmup: 5000, sync: true, remotes: 2 }

const log = (line: string): void => { process.stderr.write(`${line}\n`) }
/** On a terminal the progress line rewrites itself; in a log file it would only add noise. */
const progress = (line: string): void => { if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K`) }
const endProgress = (): void => { if (process.stderr.isTTY) process.stderr.write('\r\x1b[K') }

async function main(): Promise<number> {
  let options
  try {
    options = parseCompareArgs(process.argv.slice(2))
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    log(`bench/compare: ${error.message}\n\n${USAGE}`)
    return 2
  }
  if (options === undefined) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const group = new ProcessGroup()
  stopOnExit(group, log)
  const started = new Date()
  const loadAverageAtStart = loadavg()[0] ?? 0
  try {
    const binaries = await ensureServerBinaries(log)
    // Before any server starts, so nothing else of the harness competes with the probes.
    const bounds = options.cas ? await measureBounds() : undefined
    const pipeline = options.cas ? await measurePipeline(PIPELINE_RUN) : undefined
    const reports: CompareReport[] = []
    for (let round = 1; round <= options.rounds; round++) {
      if (options.rounds > 1) log(`round ${round} of ${options.rounds}`)
      const roundStarted = round === 1 ? started : new Date()
      const roundLoadAverage = round === 1 ? loadAverageAtStart : loadavg()[0] ?? 0
      const systems: SystemReport[] = []
      for (const name of options.systems) {
        // With --tls each system runs plaintext and then TLS back to back, so the two runs see the
        // same machine (it is shared) as nearly as possible and their ratio is the figure to read.
        for (const withTls of options.tls ? [false, true] : [false]) {
          try {
            const tls: CompareTls | undefined = withTls ? await makeCompareCertificates(group, DRIVERS[name].serverNames) : undefined
            systems.push(await runSystem(DRIVERS[name], { ...options, tls, group, binaries, log: line => { endProgress(); log(line) }, progress }))
          } finally {
            endProgress()
            // One system at a time: stop this one before the next starts, so they never share the CPUs.
            await group.stopAll()
          }
        }
      }
      reports.push(buildReport(options, systems, roundStarted, roundLoadAverage, bounds, pipeline))
    }
    if (options.json) process.stdout.write(`${JSON.stringify(options.rounds > 1 ? reports : reports[0], null, 2)}\n`)
    else process.stdout.write(`${[...reports.map(formatTable), ...(options.rounds > 1 ? [formatRoundsSummary(reports)] : [])].join('\n\n')}\n`)
    return 0
  } catch (error) {
    log(`bench/compare: ${error instanceof Error ? error.message : String(error)}`)
    return 1
  } finally {
    await group.stopAll()
  }
}

process.exitCode = await main()
