/**
 * The sweep's picture as a standalone SVG: write latency (p50, p99) against W on the left, the
 * share of stale replica reads against W on the right, so the trade-off is one glance.
 * Hand-written: two line charts do not earn a plotting dependency.
 */

export interface SweepPoint {
  /** The write level as given, e.g. `1` or `quorum`. */
  readonly label: string
  readonly p50Ms: number
  readonly p99Ms: number
  /** Percent of answered R=1 replica reads that were stale right after the ack. */
  readonly staleNowPercent: number
  readonly staleAfterSettlePercent: number
}

export interface SweepPlot {
  readonly title: string
  /** One line under the title: the load (concurrency, sizes, nodes, length). */
  readonly subtitle: string
  readonly settleMs: number
  readonly points: readonly SweepPoint[]
}

interface Series {
  readonly name: string
  readonly color: string
  readonly dashed: boolean
  readonly values: readonly number[]
}

interface Panel {
  readonly left: number
  readonly title: string
  readonly yLabel: string
  readonly unit: string
  readonly series: readonly Series[]
  /** Largest value the y axis may need to reach (percent axes stop at 100). */
  readonly cap?: number
}

const WIDTH = 960
const HEIGHT = 500
const PANEL_WIDTH = 370
const PANEL_LEFTS = [80, 560] as const
const PLOT_TOP = 110
const PLOT_BOTTOM = 380
const TARGET_TICKS = 5
/** Value labels: baseline offsets from their point and the least vertical distance between two. */
const LABEL_ABOVE_PX = 10
const LABEL_BELOW_PX = 17
const LABEL_GAP_PX = 13
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'
const COLORS = { p50: '#1f77b4', p99: '#d62728', staleNow: '#e6550d', staleSettled: '#2ca02c' } as const

export function renderSweepSvg(plot: SweepPlot): string {
  const labels = plot.points.map(point => point.label)
  const panels: Panel[] = [
    {
      left: PANEL_LEFTS[0], title: 'Write latency', yLabel: 'latency (ms)', unit: 'ms',
      series: [
        { name: 'p50', color: COLORS.p50, dashed: false, values: plot.points.map(point => point.p50Ms) },
        { name: 'p99', color: COLORS.p99, dashed: false, values: plot.points.map(point => point.p99Ms) },
      ],
    },
    {
      left: PANEL_LEFTS[1], title: 'Stale replica reads (R=1)', yLabel: 'stale reads (%)', unit: '%', cap: 100,
      series: [
        { name: 'right after the ack', color: COLORS.staleNow, dashed: false, values: plot.points.map(point => point.staleNowPercent) },
        { name: `after ${plot.settleMs} ms`, color: COLORS.staleSettled, dashed: true, values: plot.points.map(point => point.staleAfterSettlePercent) },
      ],
    },
  ]
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ${FONT}>`,
    `<title>${escapeXml(plot.title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="34" text-anchor="middle" font-size="20" font-weight="600" fill="#222">${escapeXml(plot.title)}</text>`,
    `<text x="${WIDTH / 2}" y="58" text-anchor="middle" font-size="13" fill="#555">${escapeXml(plot.subtitle)}</text>`,
    ...panels.map(panel => renderPanel(panel, labels)),
    `</svg>`,
    '',
  ].join('\n')
}

function renderPanel(panel: Panel, labels: readonly string[]): string {
  const { left } = panel
  const right = left + PANEL_WIDTH
  const maxValue = Math.max(0, ...panel.series.flatMap(series => series.values.filter(Number.isFinite)))
  const { top: yTop, step } = niceAxis(maxValue, panel.cap)
  const y = (value: number): number => PLOT_BOTTOM - (Math.min(value, yTop) / yTop) * (PLOT_BOTTOM - PLOT_TOP)
  const slot = PANEL_WIDTH / Math.max(1, labels.length)
  const x = (index: number): number => left + slot * (index + 0.5)
  const decimals = Math.max(0, -Math.floor(Math.log10(step)))
  const parts: string[] = [`<g class="panel">`]
  parts.push(`<text x="${left + PANEL_WIDTH / 2}" y="${PLOT_TOP - 22}" text-anchor="middle" font-size="15" font-weight="600" fill="#222">${escapeXml(panel.title)}</text>`)
  const ticks = Math.round(yTop / step)
  for (let index = 0; index <= ticks; index++) {
    const tick = index * step
    const ty = fixed(y(tick))
    parts.push(`<line x1="${left}" y1="${ty}" x2="${right}" y2="${ty}" stroke="${tick === 0 ? '#444' : '#e3e3e3'}" stroke-width="1"/>`)
    parts.push(`<text x="${left - 8}" y="${ty}" dy="4" text-anchor="end" font-size="12" fill="#444">${tick.toFixed(decimals)}</text>`)
  }
  parts.push(`<line x1="${left}" y1="${PLOT_TOP}" x2="${left}" y2="${PLOT_BOTTOM}" stroke="#444" stroke-width="1"/>`)
  labels.forEach((label, index) => {
    const tx = fixed(x(index))
    parts.push(`<line x1="${tx}" y1="${PLOT_BOTTOM}" x2="${tx}" y2="${PLOT_BOTTOM + 5}" stroke="#444" stroke-width="1"/>`)
    parts.push(`<text x="${tx}" y="${PLOT_BOTTOM + 20}" text-anchor="middle" font-size="13" fill="#222">W=${escapeXml(label)}</text>`)
  })
  parts.push(`<text x="${left + PANEL_WIDTH / 2}" y="${PLOT_BOTTOM + 44}" text-anchor="middle" font-size="13" fill="#444">write level W</text>`)
  const yMid = (PLOT_TOP + PLOT_BOTTOM) / 2
  parts.push(`<text x="${left - 52}" y="${yMid}" text-anchor="middle" font-size="13" fill="#444" transform="rotate(-90 ${left - 52} ${yMid})">${escapeXml(panel.yLabel)}</text>`)
  for (const series of panel.series) parts.push(renderSeries(series, x, y))
  parts.push(renderValueLabels(panel, x, y))
  parts.push(renderLegend(panel))
  parts.push(`</g>`)
  return parts.join('\n')
}

function renderSeries(series: Series, x: (index: number) => number, y: (value: number) => number): string {
  const points = series.values.map((value, index) => ({ value, px: x(index), py: y(plottable(value)) }))
  const dash = series.dashed ? ' stroke-dasharray="6 4"' : ''
  const parts = [`<g class="series" data-series="${escapeXml(series.name)}">`]
  if (points.length > 1) {
    parts.push(`<polyline fill="none" stroke="${series.color}" stroke-width="2.5"${dash} points="${points.map(p => `${fixed(p.px)},${fixed(p.py)}`).join(' ')}"/>`)
  }
  for (const point of points) {
    parts.push(`<circle class="point" cx="${fixed(point.px)}" cy="${fixed(point.py)}" r="4.5" fill="${series.color}" stroke="#fff" stroke-width="1.5" data-value="${point.value}"/>`)
  }
  parts.push(`</g>`)
  return parts.join('\n')
}

/**
 * The number beside each point. At one W the lowest point's label goes below it when there is
 * room, the others above theirs, pushed up so no two overlap; a label equal to one already
 * placed at the same spot (two series at the same value) is shown once.
 */
function renderValueLabels(panel: Panel, x: (index: number) => number, y: (value: number) => number): string {
  const count = Math.max(0, ...panel.series.map(series => series.values.length))
  const parts = [`<g class="value-labels">`]
  for (let index = 0; index < count; index++) {
    const labels = panel.series
      .filter(series => index < series.values.length)
      .map(series => {
        const value = series.values[index] as number
        return { text: formatValue(value) + (panel.unit === '%' ? '%' : ''), color: series.color, py: y(plottable(value)) }
      })
      .sort((a, b) => b.py - a.py)
    let ceiling = Infinity
    const placed: { text: string; py: number }[] = []
    labels.forEach((label, order) => {
      if (placed.some(other => other.text === label.text && Math.abs(other.py - label.py) < 1)) return
      placed.push(label)
      let labelY: number
      if (order === 0 && labels.length > 1 && label.py + LABEL_BELOW_PX <= PLOT_BOTTOM - 3) {
        labelY = label.py + LABEL_BELOW_PX
      } else {
        labelY = Math.min(label.py - LABEL_ABOVE_PX, ceiling - LABEL_GAP_PX)
        ceiling = labelY
      }
      parts.push(`<text x="${fixed(x(index))}" y="${fixed(labelY)}" text-anchor="middle" font-size="11" fill="${label.color}">${escapeXml(label.text)}</text>`)
    })
  }
  parts.push(`</g>`)
  return parts.join('\n')
}

/** Where a value sits on the axis: missing values at 0, never below it. */
function plottable(value: number): number {
  return Number.isFinite(value) ? Math.max(0, value) : 0
}

function renderLegend(panel: Panel): string {
  const top = PLOT_BOTTOM + 72
  let cursor = panel.left
  const parts = [`<g class="legend">`]
  for (const series of panel.series) {
    const dash = series.dashed ? ' stroke-dasharray="6 4"' : ''
    parts.push(`<line x1="${cursor}" y1="${top}" x2="${cursor + 26}" y2="${top}" stroke="${series.color}" stroke-width="2.5"${dash}/>`)
    parts.push(`<circle cx="${cursor + 13}" cy="${top}" r="4" fill="${series.color}"/>`)
    parts.push(`<text x="${cursor + 34}" y="${top}" dy="4" font-size="13" fill="#222">${escapeXml(series.name)}</text>`)
    cursor += 34 + approximateTextWidth(series.name) + 24
  }
  parts.push(`</g>`)
  return parts.join('\n')
}

/** Top of the y axis and its tick step: 1, 2 or 5 × 10^k with about TARGET_TICKS ticks. */
export function niceAxis(maxValue: number, cap?: number): { top: number; step: number } {
  const wanted = maxValue > 0 ? maxValue * 1.1 : 1
  const limited = cap === undefined ? wanted : Math.min(wanted, cap)
  const raw = limited / TARGET_TICKS
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const normalized = raw / magnitude
  const step = (normalized <= 1 ? 1 : normalized <= 2 ? 2 : normalized <= 5 ? 5 : 10) * magnitude
  return { top: Math.ceil(limited / step - 1e-9) * step, step }
}

function formatValue(value: number): string {
  if (!Number.isFinite(value)) return '–'
  if (value >= 100) return value.toFixed(0)
  if (value >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

/** Average glyph width at 13 px; legends only need to not overlap. */
function approximateTextWidth(text: string): number {
  return text.length * 7
}

function fixed(n: number): string {
  return n.toFixed(1)
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')
}
