import t, { type Test } from 'tap'
import { createLatencyHistogram, recordLatencyMs, summarizeLatency, MAX_RECORDED_LATENCY_US } from '../../lib/bench/latency.js'
import { LoadRecorder, EXCEPTION_ERROR } from '../../lib/bench/load-recorder.js'
import { formatBenchReport, formatSweepReport, stalePercent, sweepPlot } from '../../lib/bench/report.js'
import type { BenchReport, SweepReport } from '../../lib/bench/run.js'
import { parseBenchArgs } from '../../lib/bench/args.js'

/** hdr precision with 3 significant digits: a reported value is within 0.1 % of the true one. */
function near(t: Test, actual: number, expected: number, what: string): void {
  t.ok(Math.abs(actual - expected) <= expected * 0.001 + 0.001, `${what}: ${actual} ≈ ${expected}`)
}

t.test('percentiles of 1..1000 ms come out within hdr precision', async t => {
  const histogram = createLatencyHistogram()
  for (let ms = 1; ms <= 1000; ms++) recordLatencyMs(histogram, ms)
  const summary = summarizeLatency(histogram)
  near(t, summary.p50, 500, 'p50')
  near(t, summary.p90, 900, 'p90')
  near(t, summary.p95, 950, 'p95')
  near(t, summary.p99, 990, 'p99')
  near(t, summary.max, 1000, 'max')
  near(t, summary.mean, 500.5, 'mean')
  t.equal(histogram.totalCount, 1000)
})

t.test('sub-millisecond latencies keep microsecond resolution; absurd ones are clamped, not lost', async t => {
  const histogram = createLatencyHistogram()
  recordLatencyMs(histogram, 0.25)
  recordLatencyMs(histogram, 0)
  recordLatencyMs(histogram, 10 * MAX_RECORDED_LATENCY_US)
  t.equal(histogram.totalCount, 3)
  t.equal(summarizeLatency(histogram).p50, 0.25)
  near(t, summarizeLatency(histogram).max, MAX_RECORDED_LATENCY_US / 1000, 'max is the clamp')
})

t.test('an empty histogram reports zeros instead of NaN', async t => {
  t.same(summarizeLatency(createLatencyHistogram()), { p50: 0, p90: 0, p95: 0, p99: 0, max: 0, mean: 0 })
})

t.test('the recorder counts every operation once, per kind and in total, with errors by label', async t => {
  const recorder = new LoadRecorder()
  for (let i = 1; i <= 100; i++) recorder.record({ kind: 'put', ok: true }, i)
  for (let i = 1; i <= 50; i++) recorder.record({ kind: 'get', ok: true }, i / 10)
  for (let i = 0; i < 3; i++) recorder.record({ kind: 'put', ok: false, error: 'unavailable_503' }, 2000)
  recorder.record({ kind: 'get', ok: false, error: 'timeout' }, 10_000)
  recorder.record(EXCEPTION_ERROR, 1)
  t.equal(recorder.completed, 155)
  t.equal(recorder.errors, 5)

  const result = recorder.result(2000)
  t.equal(result.elapsedMs, 2000)
  const put = result.byKind.put!
  const get = result.byKind.get!
  t.equal(put.count, 103)
  t.same(put.errors, { unavailable_503: 3 })
  t.equal(put.opsPerSecond, 50, 'successes per second: 100 in 2 s')
  near(t, put.latencyMs.p50, 50, 'put p50')
  near(t, put.latencyMs.max, 100, 'put max ignores the failed 2000 ms attempts')
  t.equal(get.count, 51)
  t.same(get.errors, { timeout: 1 })
  near(t, get.latencyMs.p99, 5, 'get p99')
  t.equal(result.total.count, put.count + get.count + 1, 'the total holds the exception, which has no kind')
  t.same(result.total.errors, { exception: 1, timeout: 1, unavailable_503: 3 })
  t.equal(result.total.opsPerSecond, 75)
  near(t, result.total.latencyMs.max, 100, 'total max')
})

t.test('the bench table has a row per kind and a total, and lists errors by label', async t => {
  const recorder = new LoadRecorder()
  for (let i = 1; i <= 10; i++) recorder.record({ kind: 'put', ok: true }, i)
  recorder.record({ kind: 'put', ok: false, error: 'unavailable_503' }, 1)
  for (let i = 1; i <= 10; i++) recorder.record({ kind: 'get', ok: true }, 1)
  const report: BenchReport = { settings: parseBenchArgs({ ops: '21' }), nodes: ['http://a:1', 'http://b:2'], result: recorder.result(1000), getMisses: 4 }
  const table = formatBenchReport(report)
  const lines = table.split('\n')
  t.match(lines[0], /^OP\s+OPS\s+OPS\/S\s+P50 MS\s+P90 MS\s+P95 MS\s+P99 MS\s+MAX MS\s+ERRORS$/)
  t.match(lines[1], /^get\s+10\s+10\s+1\.00\s+1\.00\s+1\.00\s+1\.00\s+1\.00\s+0$/)
  t.match(lines[2], /^put\s+11\s+10\s+5\.00\s+9\.0\d\s+10\.00\s+10\.00\s+10\.00\s+unavailable_503=1$/)
  t.match(lines[3], /^total\s+21\s+20\s/)
  t.match(table, /64 in flight over 2 node\(s\)/)
  t.match(table, /4 gets found no value/)
})

t.test('an open-loop run says its rate and how many operations could not start on time', async t => {
  const recorder = new LoadRecorder()
  for (let i = 1; i <= 10; i++) recorder.record({ kind: 'put', ok: true }, i)
  const schedule = { ratePerSecond: 200, maxInFlight: 4, scheduled: 12, heldBack: 3, notStarted: 2 }
  const report: BenchReport = { settings: parseBenchArgs({ rate: '200', concurrency: '4', duration: '1' }), nodes: ['http://a:1'], result: { ...recorder.result(1000), schedule }, getMisses: 0 }
  const table = formatBenchReport(report)
  t.match(table, /200 ops\/s scheduled \(open loop, at most 4 in flight\) over 1 node\(s\)/)
  t.match(table, /open loop: 12 operations scheduled; 3 started late because 4 were in flight \(their latency counts from the scheduled start\), 2 never started/)
})

t.test('sweep tables and plot data add up from the staleness counts', async t => {
  const runFor = (w: number, staleNow: number) => {
    const recorder = new LoadRecorder()
    for (let i = 1; i <= 100; i++) recorder.record({ kind: 'put', ok: true }, i * w)
    return {
      w,
      result: recorder.result(1000),
      getMisses: 0,
      staleness: {
        sampledWrites: 10, nodes: 3, settleMs: 100,
        immediate: { reads: 30, stale: staleNow, fresh: 30 - staleNow - 1, failed: 1 },
        afterSettle: { reads: 30, stale: 0, fresh: 30, failed: 0 },
      },
    }
  }
  const report: SweepReport = {
    settings: parseBenchArgs({ sweep: 'w=1,3', mix: '1:0', ops: '100' }),
    nodes: ['http://a:1', 'http://b:2', 'http://c:3'],
    runs: [runFor(1, 20), runFor(3, 0)],
  }
  const table = formatSweepReport(report, '/tmp/sweep.svg')
  t.match(table, /^W\s+PUTS\s+PUTS\/S\s+P50 MS/)
  t.match(table, /\n1\s+10\s+30\s+20 \(69\.0%\)\s+0 \(0\.0%\)\s+1\n/, 'stale share is of the reads that answered (20 of 29)')
  t.match(table, /plot written to \/tmp\/sweep\.svg/)
  t.equal(stalePercent({ reads: 0, stale: 0, fresh: 0, failed: 0 }), 0)

  const plot = sweepPlot(report)
  t.same(plot.points.map(point => point.label), ['1', '3'])
  t.ok(plot.points[1]!.p50Ms > plot.points[0]!.p50Ms, 'W=3 latencies were recorded three times larger')
  t.equal(plot.points[1]!.staleNowPercent, 0)
  t.equal(plot.settleMs, 100)
})
