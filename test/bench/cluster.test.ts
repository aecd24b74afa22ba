import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCliText } from '../helpers/cli.js'
import t from 'tap'
import type { BenchReport, SweepReport } from '../../lib/bench/run.js'
import type { KindStats } from '../../lib/bench/closed-loop.js'
import { HearsayClient } from '../../lib/client/client.js'
import { startCluster, waitFor } from '../helpers/daemon.js'
import { xmlProblem } from './fixtures/xml.js'

/**
 * `hearsay bench` and `--sweep` against a real 3-node cluster with full replication and a small
 * injected replica delay. Checks shapes and that the counts add up; never how fast anything is.
 */

const MEMBERSHIP_TIMEOUT_MS = 30_000
/** Small enough for a short test, large enough that W=1 leaves replicas behind now and then. */
const TEST_DELAY_MAX_MS = 20


const hearsay = runCliText

function failures(stats: KindStats): number {
  return Object.values(stats.errors).reduce((sum, count) => sum + count, 0)
}

t.test('bench and sweep against a real 3-node cluster', async t => {
  const cluster = await startCluster(3, () => ({
    log: { level: 'warn' },
    replication: { factor: 3, testDelayMinMs: 0, testDelayMaxMs: TEST_DELAY_MAX_MS },
  }))
  t.teardown(() => cluster.stop())
  const urls = cluster.nodes.map(node => node.url)
  const client = new HearsayClient({ nodes: [urls[0] as string] })
  t.teardown(() => client.close())
  await waitFor('3 alive members', MEMBERSHIP_TIMEOUT_MS, async () =>
    (await client.members()).filter(member => member.state === 'alive').length === 3)
  const node = urls.join(',')

  await t.test('--ops 200 --json runs exactly 200 operations spread over the nodes', async t => {
    const { code, stdout, stderr } = await hearsay(['bench', '--node', node, '--ops', '200', '--concurrency', '8', '--keys', '1000', '--json'])
    t.equal(code, 0, stderr)
    t.equal(stderr, '', 'no progress line with --json')
    const report = JSON.parse(stdout) as BenchReport
    t.same(report.nodes, urls)
    t.equal(report.result.total.count, 200)
    const put = report.result.byKind.put as KindStats
    const get = report.result.byKind.get as KindStats
    t.equal(put.count + get.count, 200, 'every operation is a put or a get')
    t.equal(put.count, 100, 'a 1:1 mix is exactly half puts')
    t.equal(failures(report.result.total), failures(put) + failures(get))
    t.ok(report.result.total.count - failures(report.result.total) > 0, 'some operations succeeded')
    for (const stats of [put, get, report.result.total]) {
      const { p50, p90, p95, p99, max } = stats.latencyMs
      t.ok(p50 <= p90 && p90 <= p95 && p95 <= p99 && p99 <= max, `percentiles are ordered: ${p50} ${p90} ${p95} ${p99} ${max}`)
    }
    t.ok(report.getMisses <= get.count)
  })

  await t.test('a get-only run finds every key a put-only run wrote', async t => {
    const common = ['bench', '--node', node, '--keys', '60', '--ops', '60', '--concurrency', '4', '--json']
    const puts = await hearsay([...common, '--mix', '1:0', '--w', 'all'])
    t.equal(puts.code, 0, puts.stderr)
    t.same((JSON.parse(puts.stdout) as BenchReport).result.total.errors, {})
    const gets = await hearsay([...common, '--mix', '0:1'])
    t.equal(gets.code, 0, gets.stderr)
    const report = JSON.parse(gets.stdout) as BenchReport
    t.equal(report.result.byKind.get?.count, 60)
    t.equal(report.getMisses, 0, 'keys are the same on every run')
  })

  await t.test('without --json a table with a row per kind', async t => {
    const { code, stdout } = await hearsay(['bench', '--node', node, '--ops', '40', '--concurrency', '4'])
    t.equal(code, 0)
    t.match(stdout, /^OP\s+OPS\s+OPS\/S\s+P50 MS\s+P90 MS\s+P95 MS\s+P99 MS\s+MAX MS\s+ERRORS\n/)
    t.match(stdout, /\nget\s+20\s/)
    t.match(stdout, /\nput\s+20\s/)
    t.match(stdout, /\ntotal\s+40\s/)
  })

  await t.test('--sweep w=1,2,3 runs once per W, counts stale reads that add up, and writes the plot', async t => {
    const dir = t.testdir({})
    const plotFile = join(dir, 'sweep.svg')
    const { code, stdout, stderr } = await hearsay([
      'bench', '--node', node, '--sweep', 'w=1,2,3', '--mix', '1:0', '--ops', '150', '--concurrency', '8',
      '--keys', '1000', '--sample-every', '10', '--settle', '200ms', '--plot', plotFile, '--json',
    ])
    t.equal(code, 0, stderr)
    const report = JSON.parse(stdout) as SweepReport & { plotFile: string }
    t.equal(report.plotFile, plotFile)
    t.same(report.runs.map(run => run.w), [1, 2, 3])
    for (const run of report.runs) {
      const puts = run.result.byKind.put as KindStats
      t.equal(puts.count, 150, `w=${run.w}: every operation is a put`)
      const acked = puts.count - failures(puts)
      const { sampledWrites, nodes, immediate, afterSettle } = run.staleness
      t.equal(sampledWrites, Math.ceil(acked / 10), `w=${run.w}: every 10th acknowledged write is sampled`)
      t.equal(nodes, 3)
      for (const phase of [immediate, afterSettle]) {
        t.equal(phase.reads, sampledWrites * nodes, `w=${run.w}: reads = sampled writes × nodes`)
        t.equal(phase.stale + phase.fresh + phase.failed, phase.reads, `w=${run.w}: every read is stale, fresh or failed`)
      }
    }
    const all = report.runs[2]!.staleness.immediate
    t.equal(all.stale, 0, 'W=3 of N=3: every replica has the write when it is acknowledged')

    const svg = readFileSync(plotFile, 'utf8')
    t.equal(xmlProblem(svg), undefined, 'the plot is well-formed XML')
    const series = [...svg.matchAll(/<g class="series" data-series="[^"]*">([\s\S]*?)<\/g>/g)]
    t.equal(series.length, 4)
    for (const [, body] of series) t.equal([...body!.matchAll(/<circle class="point"/g)].length, 3, 'one point per W')
  })

  await t.test('--watchers 3: every acknowledged put reaches every watcher, with a latency table', async t => {
    const { code, stdout, stderr } = await hearsay(['bench', '--node', node, '--watchers', '3', '--mix', '1:0', '--ops', '120', '--concurrency', '4', '--keys', '1000', '--json'])
    t.equal(code, 0, stderr)
    const report = JSON.parse(stdout) as BenchReport
    const puts = report.result.byKind.put as KindStats
    const acked = puts.count - failures(puts)
    const watch = report.watch!
    t.equal(watch.watchers, 3)
    t.equal(watch.missed, 0, 'no delivery owed was missing after the load')
    t.equal(watch.events, acked * 3, 'each acknowledged put was delivered to each of the 3 watchers once')
    const { p50, p90, p99, max } = watch.latencyMs
    t.ok(p50 <= p90 && p90 <= p99 && p99 <= max, `percentiles are ordered: ${p50} ${p90} ${p99} ${max}`)

    const table = await hearsay(['bench', '--node', node, '--watchers', '2', '--mix', '1:0', '--ops', '20', '--concurrency', '2'])
    t.equal(table.code, 0, table.stderr)
    t.match(table.stdout, /\nWATCHERS\s+EVENTS\s+EVENTS\/S\s+P50 MS\s+P90 MS\s+P95 MS\s+P99 MS\s+MAX MS\s+MISSED\s+RECONNECTS\n2\s+40\s+\S+(\s+\d+\.\d\d){5}\s+0\s+0\n/)
  })

  await t.test('the sweep table reports where the plot went', async t => {
    const dir = t.testdir({})
    const plotFile = join(dir, 'table.svg')
    const { code, stdout } = await hearsay(['bench', '--node', node, '--sweep', 'w=1,3', '--ops', '40', '--concurrency', '4', '--plot', plotFile])
    t.equal(code, 0)
    t.match(stdout, /^W\s+PUTS\s+PUTS\/S/)
    t.match(stdout, /\nW\s+SAMPLED\s+READS\s+STALE NOW\s+STALE AFTER 100ms\s+FAILED READS\n/)
    t.match(stdout, `plot written to ${plotFile}`)
    t.equal(xmlProblem(readFileSync(plotFile, 'utf8')), undefined)
  })
})

t.test('usage errors exit 2 before any load is sent', async t => {
  const cases: [string[], RegExp][] = [
    [['bench', '--mix', '1'], /--mix must be PUT:GET/],
    [['bench', '--ops', '10', '--duration', '1s'], /not both/],
    [['bench', '--sweep', 'w=1', '--plot', '/nonexistent-dir/x/sweep.svg'], /--plot .* does not exist or is not writable/],
    [['bench', 'extra'], /too many arguments/],
  ]
  for (const [argv, message] of cases) {
    // A closed port: had the load started, the error would be a connection error and exit 1.
    const { code, stderr } = await hearsay([...argv, '--node', 'http://127.0.0.1:9'])
    t.equal(code, 2, argv.join(' '))
    t.match(stderr, message)
  }
})

t.test('a node that does not answer fails the bench before the load, naming it', async t => {
  const { code, stderr } = await hearsay(['bench', '--node', 'http://127.0.0.1:9', '--ops', '10', '--timeout', '2s'])
  t.equal(code, 1)
  t.match(stderr, /127\.0\.0\.1:9/)
})
