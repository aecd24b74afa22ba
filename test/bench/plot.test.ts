import t from 'tap'
import { escapeXml, niceAxis, renderSweepSvg, type SweepPlot } from '../../lib/bench/plot.js'
import { xmlProblem } from './fixtures/xml.js'

const plot: SweepPlot = {
  title: 'hearsay: what W costs',
  subtitle: '64 in flight over 3 node(s), 10.0 s, 1:0 put:get <& "quotes">',
  settleMs: 100,
  points: [
    { label: '1', p50Ms: 1.2, p99Ms: 8.5, staleNowPercent: 40, staleAfterSettlePercent: 2 },
    { label: '2', p50Ms: 3.4, p99Ms: 21, staleNowPercent: 12.5, staleAfterSettlePercent: 0 },
    { label: 'all', p50Ms: 9.9, p99Ms: 35.2, staleNowPercent: 0, staleAfterSettlePercent: 0 },
  ],
}

t.test('the tiny XML check itself tells well-formed from broken', async t => {
  t.equal(xmlProblem('<a><b x="1"/>text &amp; more</a>'), undefined)
  t.match(xmlProblem('<a><b></a></b>'), /closes/)
  t.match(xmlProblem('<a>1 < 2</a>'), /"<"/)
  t.match(xmlProblem('<a>salt & pepper</a>'), /bare "&"/)
  t.match(xmlProblem('<a x=1></a>'), /not a tag|"<"/)
  t.match(xmlProblem('<a></a><b></b>'), /2 root elements/)
  t.match(xmlProblem('<a>'), /never closed/)
})

t.test('the sweep plot is well-formed SVG with one point per W in every series', async t => {
  const svg = renderSweepSvg(plot)
  t.equal(xmlProblem(svg), undefined)
  t.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  const series = [...svg.matchAll(/<g class="series" data-series="([^"]*)">([\s\S]*?)<\/g>/g)]
  t.same(series.map(match => match[1]), ['p50', 'p99', 'right after the ack', 'after 100 ms'])
  for (const [, name, body] of series) {
    t.equal([...body!.matchAll(/<circle class="point"/g)].length, plot.points.length, `${name} has a point per W`)
    t.match(body, /<polyline /, `${name} joins its points`)
  }
  const p99Values = [...series[1]![2]!.matchAll(/data-value="([^"]*)"/g)].map(match => Number(match[1]))
  t.same(p99Values, [8.5, 21, 35.2])
  for (const label of ['W=1', 'W=2', 'W=all', 'write level W', 'latency (ms)', 'stale reads (%)']) t.match(svg, label)
  t.match(svg, '&lt;&amp; &quot;quotes&quot;&gt;', 'text from outside is escaped')
})

t.test('points higher up the axis are drawn higher on the page', async t => {
  const svg = renderSweepSvg(plot)
  const p50 = /data-series="p50">([\s\S]*?)<\/g>/.exec(svg)![1]!
  const ys = [...p50.matchAll(/<circle class="point" cx="[^"]*" cy="([^"]*)"/g)].map(match => Number(match[1]))
  t.equal(ys.length, 3)
  t.ok(ys[0]! > ys[1]! && ys[1]! > ys[2]!, `SVG y grows downwards: ${ys.join(', ')}`)
})

t.test('a single W and all-zero values still draw a sane plot', async t => {
  const svg = renderSweepSvg({ ...plot, points: [{ label: '1', p50Ms: 0, p99Ms: 0, staleNowPercent: 0, staleAfterSettlePercent: 0 }] })
  t.equal(xmlProblem(svg), undefined)
  t.notMatch(svg, /NaN|Infinity/)
  t.equal([...svg.matchAll(/<circle class="point"/g)].length, 4)
})

t.test('axes end on a round number just above the largest value', async t => {
  t.same(niceAxis(35.2), { top: 40, step: 10 })
  t.same(niceAxis(0.9), { top: 1, step: 0.2 })
  t.same(niceAxis(0), { top: 1, step: 0.2 })
  t.same(niceAxis(95, 100), { top: 100, step: 20 })
  t.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;')
})
